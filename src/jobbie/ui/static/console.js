/* Jobbie console: theme toggle, confirmations, row selection and live fragments.
   Written for Jobbie (MIT); no dependencies, no build step. */
(function () {
  "use strict";
  var root = document.documentElement;

  function isDark() {
    if (root.dataset.theme) return root.dataset.theme === "dark";
    return window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function labelToggle() {
    var button = document.querySelector("[data-theme-toggle]");
    if (button) button.setAttribute("aria-pressed", isDark() ? "true" : "false");
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    root.dataset.theme = isDark() ? "light" : "dark";
    try { localStorage.setItem("jobbie-theme", root.dataset.theme); } catch (e) { /* ignore */ }
    labelToggle();
  });

  // Destructive actions ask first: data-confirm on the form or on the pressed button.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-select-all]")) return;
    document.querySelectorAll('input[name="job_id"]').forEach(function (box) {
      box.checked = event.target.checked;
    });
  });

  // One SSE stream per page, closed while the tab is hidden; the server sends the page's
  // live fragments on (re)connect and after commits that change them.
  var url = document.body.dataset.live;
  var source = null;

  function open() {
    if (source || !url) return;
    source = new EventSource(url);
    source.addEventListener("fragments", function (event) {
      var parts = JSON.parse(event.data);
      Object.keys(parts).forEach(function (id) {
        var element = document.getElementById(id);
        if (element) element.innerHTML = parts[id];
      });
      document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
    });
    source.addEventListener("gone", function () { close(); });
  }

  function close() {
    if (source) { source.close(); source = null; }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) close(); else open();
  });
  window.addEventListener("pagehide", close);
  labelToggle();
  if (!document.hidden) open();
})();
