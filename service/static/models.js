/* The models page: follow a retrain job's progress (polls the job's state under the session cookie),
   then reload the page to show the new version. Plain JS, served locally; without it a link reloads. */
(function () {
  "use strict";

  function setup() {
    var box = document.getElementById("job");
    if (!box) return;
    var state = box.getAttribute("data-state");
    if (state !== "queued" && state !== "running") return;
    var id = box.getAttribute("data-job");
    var stages = JSON.parse(box.getAttribute("data-stages") || "{}");
    var states = JSON.parse(box.getAttribute("data-states") || "{}");
    var bar = document.getElementById("job-progress");
    var pct = document.getElementById("job-progress-label");
    var stage = document.getElementById("job-stage");
    var badge = document.getElementById("job-state");
    var failures = 0;

    function show(job) {
      var value = Math.round(100 * (job.progress || 0));
      bar.value = value;
      pct.textContent = value + "%";
      stage.textContent = job.stage_label || stages[job.stage] || job.stage;
      badge.textContent = states[job.state] || job.state;
      badge.className = "badge job-" + job.state;
      box.setAttribute("data-state", job.state);
    }

    function poll() {
      fetch("/staff/models/jobs/" + encodeURIComponent(id), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store"
      })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (job) {
          failures = 0;
          show(job);
          if (job.state === "succeeded" || job.state === "failed") {
            // The server renders the result and the new version list (reload: the URL may differ only by #retrain).
            window.location.reload();
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () {
          failures += 1;
          if (failures < 10) window.setTimeout(poll, 2000);
          else stage.textContent = "Không theo dõi được tiến độ; hãy tải lại trang.";
        });
    }

    window.setTimeout(poll, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setup();
    var alert = document.getElementById("models-error");
    if (alert) alert.focus();
  });
})();
