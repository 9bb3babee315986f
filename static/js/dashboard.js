/* Live status and progress for the dashboard's unfinished analyses: one request for the whole
   list (GET /api/v1/analyses), not one per row, so a busy dashboard stays within the rate limit. */
(function () {
  "use strict";
  var table = document.getElementById("jobs");
  if (!table || !table.querySelector("tr[data-live]")) return;
  var STATUS_TEXT = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };
  var everyMs = 1000 * parseFloat(table.dataset.pollAfter || "2");

  function update(row, job) {
    var status = row.querySelector('[data-role="status"]');
    status.className = "status status-" + job.status;
    status.textContent = STATUS_TEXT[job.status] || job.status;
    var progress = row.querySelector('[data-role="progress"]');
    if (progress) progress.value = job.progress;
    var pct = row.querySelector('[data-role="pct"]');
    if (pct) pct.textContent = job.progress + "%";
    var dominant = job.summary && job.summary.dominant_emotion;
    if (dominant) {
      var badge = document.createElement("span");
      badge.className = "badge emotion-" + dominant;
      badge.textContent = dominant;
      row.querySelector('[data-role="emotion"]').replaceChildren(badge);
    }
    if (window.VS.FINISHED.indexOf(job.status) >= 0) row.removeAttribute("data-live");
  }

  function tick() {
    fetch(table.dataset.listUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 429) {
          var wait = parseFloat(response.headers.get("Retry-After"));
          setTimeout(tick, 1000 * (isFinite(wait) ? wait : 10));
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json().then(function (page) {
          page.results.forEach(function (job) {
            var row = table.querySelector('tr[data-live][data-job="' + job.id + '"]');
            if (row) update(row, job);
          });
          if (table.querySelector("tr[data-live]")) setTimeout(tick, everyMs);
        });
      })
      .catch(function () { setTimeout(tick, 4 * everyMs); });
  }
  setTimeout(tick, everyMs);
})();
