/* Live status and progress for the dashboard's unfinished analyses: the API's list of queued and
   running jobs (every page of it), not one request per row, so a busy dashboard stays within the
   rate limit. A row that leaves that list has finished: its final state comes from the job. */
(function () {
  "use strict";
  var table = document.getElementById("jobs");
  if (!table || !table.querySelector("tr[data-live]")) return;
  var STATUS_TEXT = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };
  var everyMs = 1000 * parseFloat(table.dataset.pollAfter || "2");

  function update(row, job) {
    var status = row.querySelector('[data-role="status"]');
    // A success that found no speech is not shown as a green success (as on the job page).
    var empty = job.status === "succeeded" && job.summary && job.summary.speech_detected === false;
    status.className = "status status-" + (empty ? "empty" : job.status);
    status.textContent = empty ? "No speech found" : STATUS_TEXT[job.status] || job.status;
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

  function finish(row) {
    // Finished since the last poll: one request for its final status and dominant emotion.
    fetch(row.dataset.apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.ok) return response.json();
        if (response.status === 404) row.removeAttribute("data-live"); // deleted meanwhile
        return null;
      })
      .then(function (job) { if (job) update(row, job); })
      .catch(function () { /* the next page load shows it */ });
  }

  function tick(url, seen) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 429) {
          var wait = parseFloat(response.headers.get("Retry-After"));
          setTimeout(function () { tick(url, seen); }, 1000 * (isFinite(wait) ? wait : 10));
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json().then(function (page) {
          page.results.forEach(function (job) {
            seen[job.id] = true;
            var row = table.querySelector('tr[data-live][data-job="' + job.id + '"]');
            if (row) update(row, job);
          });
          if (page.next) { tick(page.next, seen); return; }
          table.querySelectorAll("tr[data-live]").forEach(function (row) {
            if (!seen[row.dataset.job]) finish(row);
          });
          if (table.querySelector("tr[data-live]")) setTimeout(start, everyMs);
        });
      })
      .catch(function () { setTimeout(start, 4 * everyMs); });
  }
  function start() { tick(table.dataset.listUrl, {}); }
  setTimeout(start, everyMs);
})();
