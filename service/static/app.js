/* Keyboard work in the clerk's inbox: j/k move between cases, Enter confirms the selected route,
   o opens the case. Plain JS, served locally; the pages work without it. */
(function () {
  "use strict";

  function setupInbox() {
    var cards = Array.prototype.slice.call(document.querySelectorAll(".case-card"));
    if (!cards.length) return;

    function current() {
      var el = document.activeElement;
      return el && el.closest ? cards.indexOf(el.closest(".case-card")) : -1;
    }

    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var t = ev.target;
      var typing = t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable;
      if (typing) return;
      var i = current();
      if (ev.key === "j" || ev.key === "k") {
        var n = ev.key === "j" ? Math.min(cards.length - 1, i + 1) : Math.max(0, i - 1);
        cards[n].focus();
        ev.preventDefault();
      } else if (ev.key === "Enter" && t.classList && t.classList.contains("case-card")) {
        var form = t.querySelector("form.route-form");
        if (form) {
          ev.preventDefault();
          if (form.requestSubmit) form.requestSubmit(); else form.submit();
        }
      } else if (ev.key === "o" && i >= 0) {
        var link = cards[i].querySelector("a.case-link");
        if (link) window.location.href = link.href;
      }
    });

    // After a confirmation the next case waiting for one gets the focus, so work goes on from the keyboard.
    var waiting = document.querySelector('.case-card[data-state="new"]');
    if (waiting) waiting.focus({ preventScroll: false });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupInbox();
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    var summary = document.getElementById("error-summary") || document.getElementById("action-error");
    if (summary) summary.focus();
  });
})();
