// Jobbie's Swagger UI start-up: a file of its own so the page needs no inline script. The
// page names the document to show in the container's data-url attribute.
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.dataset.url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
  });
});
