/* Live status and progress for the dashboard's unfinished analyses. */
(function () {
  "use strict";
  var STATUS_TEXT = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };

  document.querySelectorAll("tr[data-live]").forEach(function (row) {
    var status = row.querySelector('[data-role="status"]');
    var progress = row.querySelector('[data-role="progress"]');
    var pct = row.querySelector('[data-role="pct"]');
    var emotion = row.querySelector('[data-role="emotion"]');
    window.VS.pollJob(row.getAttribute("data-live"), function (job) {
      status.className = "status status-" + job.status;
      status.textContent = STATUS_TEXT[job.status] || job.status;
      if (progress) progress.value = job.progress;
      if (pct) pct.textContent = job.progress + "%";
      var dominant = job.summary && job.summary.dominant_emotion;
      if (dominant) {
        var badge = document.createElement("span");
        badge.className = "badge emotion-" + dominant;
        badge.textContent = dominant;
        emotion.replaceChildren(badge);
      }
    });
  });
})();
