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

  // The public form: "Câu hỏi tương tự đã được trả lời" while the citizen types (a debounced server-side
  // search of published answers). Without scripts the "Kiểm tra trước khi gửi" button shows the same list.
  function setupSimilarAnswered() {
    var box = document.getElementById("similar-answered");
    var title = document.getElementById("title");
    var content = document.getElementById("content");
    if (!box || !title || !content) return;
    var timer = null;
    var last = "";
    function render(items) {
      var list = box.querySelector("ul");
      list.textContent = "";
      items.forEach(function (a) {
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.href = a.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = a.title;
        li.appendChild(link);
        list.appendChild(li);
      });
      box.hidden = items.length === 0;
    }
    function lookup() {
      var q = (title.value + " " + content.value).trim();
      if (q.length < 12 || q === last) return;
      last = q;
      fetch("/api/v1/answers/similar?k=5&q=" + encodeURIComponent(q.slice(0, 2000)), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) { if (q === last) render(data.items || []); })
        .catch(function () { /* the button still works */ });
    }
    function later() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(lookup, 400);
    }
    title.addEventListener("input", later);
    content.addEventListener("input", later);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupInbox();
    setupSimilarAnswered();
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    var summary = document.getElementById("error-summary") || document.getElementById("action-error");
    if (summary) summary.focus();
  });
})();
