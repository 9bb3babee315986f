/* Polls GET /api/v1/analyses/{id} until the job is finished, waiting as long as the server's
   Retry-After says (also on 429), with a gentle back-off when the network fails. */
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "canceled"];

  function retryAfterMs(response, fallbackS) {
    var seconds = parseFloat(response.headers.get("Retry-After"));
    return 1000 * (isFinite(seconds) && seconds >= 0 ? Math.max(seconds, 0.5) : fallbackS);
  }

  function pollJob(url, onUpdate, onFinished) {
    var failures = 0;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 429) {
            setTimeout(tick, retryAfterMs(response, 5));
            return;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          failures = 0;
          var delay = retryAfterMs(response, 2);
          return response.json().then(function (job) {
            onUpdate(job);
            if (FINISHED.indexOf(job.status) >= 0) {
              if (onFinished) onFinished(job);
            } else {
              setTimeout(tick, delay);
            }
          });
        })
        .catch(function () {
          failures += 1;
          setTimeout(tick, Math.min(30000, 2000 * Math.pow(2, failures)));
        });
    }
    tick();
  }

  window.VS = window.VS || {};
  window.VS.pollJob = pollJob;
  window.VS.FINISHED = FINISHED;
})();
