/* Jobbie console: apply the saved theme before the page paints (no flash). MIT, part of Jobbie. */
(function () {
  try {
    var saved = localStorage.getItem("jobbie-theme");
    if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage blocked: follow the system */ }
})();
