// rocketjob web UI: live refresh and confirmations. No build step.
//
// Live refresh: every element with data-live (and an id) is refreshed by
// fetching the page again and swapping in the new element's content, every
// <body data-refresh> milliseconds while the tab is visible.
(function () {
  "use strict";

  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (!live.length) { return Promise.resolve(); }
    return fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "Accept": "text/html", "X-Live-Refresh": "1" },
      redirect: "manual"
    }).then(function (res) {
      if (!res.ok) { return; }
      return res.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (!fresh) { return; }
          // Copy the list first: adopting a node removes it from the live NodeList.
          var nodes = Array.prototype.slice.call(fresh.childNodes).map(function (n) { return document.adoptNode(n); });
          el.replaceChildren.apply(el, nodes);
        });
        document.body.dataset.refreshed = String(Date.now());
      });
    }).catch(function () { /* offline for a moment: try again next time */ });
  }

  function start() {
    var every = parseInt(document.body.dataset.refresh || "0", 10);
    if (every > 0) {
      var busy = false;
      window.setInterval(function () {
        if (busy || document.hidden) { return; }
        busy = true;
        refresh().finally(function () { busy = false; });
      }, every);
    }

    // Upload form: show the parameter fields of the chosen job type only
    // (the others are disabled, so they are not sent).
    var typeSelect = document.getElementById("type");
    if (typeSelect) {
      var showParams = function () {
        document.querySelectorAll("fieldset.params").forEach(function (fs) {
          var mine = fs.getAttribute("data-type") === typeSelect.value;
          fs.hidden = !mine;
          fs.disabled = !mine;
        });
      };
      typeSelect.addEventListener("change", showParams);
      showParams();
    }

    // Confirm dangerous actions; show that a long upload is under way.
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        ev.preventDefault();
        return;
      }
      var busyText = form.getAttribute("data-busy");
      if (busyText) {
        var button = form.querySelector("button[type=submit]");
        if (button) { button.disabled = true; button.textContent = busyText; }
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
