/* Job page: live stage and progress while the job runs (polling the API, honouring Retry-After),
   then the results: charts (Chart.js), the player and a transcript that seeks the video. */
(function () {
  "use strict";
  var STATUS_TEXT = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };

  function $(id) { return document.getElementById(id); }

  function clock(seconds) {
    var total = Math.max(0, Math.floor(seconds));
    var m = Math.floor(total / 60), s = total % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#868e96";
  }

  /* --- While running --- */
  function follow(root) {
    var labels = JSON.parse($("stage-labels").textContent);
    window.VS.pollJob(root.dataset.apiUrl, function (job) {
      var status = $("job-status");
      status.className = "status status-" + job.status;
      status.textContent = STATUS_TEXT[job.status] || job.status;
      var stage = labels[job.stage] || job.stage;
      if ($("job-stage").textContent !== stage) $("job-stage").textContent = stage;
      $("job-progress").value = job.progress;
      $("job-pct").textContent = job.progress + "%";
    }, function () {
      // Finished: swap in the server-rendered results, without reloading the page.
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("job");
          if (!fresh) { window.location.reload(); return; }
          root.replaceWith(fresh);
          start();
        })
        .catch(function () { window.location.reload(); });
    });
  }

  /* --- Results --- */
  function showResults() {
    var dataNode = $("results-data");
    if (!dataNode) return;
    var data = JSON.parse(dataNode.textContent);
    var player = $("player");
    var items = Array.prototype.slice.call(document.querySelectorAll("#transcript .utterance"));

    function seek(seconds) {
      if (!player) return;
      player.currentTime = seconds;
      var playing = player.play();
      if (playing && playing.catch) playing.catch(function () { /* not playable: position only */ });
    }

    document.querySelectorAll(".utterance-seek").forEach(function (button) {
      button.addEventListener("click", function () { seek(parseFloat(button.dataset.start)); });
    });
    if (player) {
      player.addEventListener("timeupdate", function () {
        var t = player.currentTime;
        items.forEach(function (item) {
          var on = t >= parseFloat(item.dataset.start) && t < parseFloat(item.dataset.end);
          item.classList.toggle("active", on);
        });
      });
    }
    if (typeof window.Chart === "undefined") return; // charts are extra; the transcript stays
    drawCharts(data, seek);
  }

  function drawCharts(data, seek) {
    var Chart = window.Chart;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#5b6475";
    Chart.defaults.animation.duration = 300;
    var u = data.utterances;
    var emotionColor = function (e) { return cssColor("--emotion-" + e); };
    var sentimentColor = function (s) { return cssColor("--sentiment-" + s); };
    // Whole-second ticks at a readable step, so short clips don't repeat "0:01" labels.
    var step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find(function (s) { return data.duration / s <= 10; }) || 900;
    var timeAxis = {
      type: "linear", min: 0, max: Math.max(step, Math.ceil(data.duration / step) * step),
      title: { display: true, text: "Time in the video" },
      ticks: { stepSize: step, callback: function (v) { return clock(v); } },
    };
    function clickToSeek(event, elements) {
      if (elements.length) seek(u[elements[0].index].start);
    }
    function hoverPointer(event, elements) {
      event.native.target.style.cursor = elements.length ? "pointer" : "default";
    }

    var timeline = $("timeline-chart");
    if (timeline && u.length) {
      new Chart(timeline, {
        type: "bar",
        data: {
          labels: data.emotions,
          datasets: [{
            label: "Utterance emotion",
            data: u.map(function (x) { return { x: [x.start, x.end], y: x.emotion }; }),
            backgroundColor: u.map(function (x) { return emotionColor(x.emotion); }),
            borderRadius: 4, borderSkipped: false, barPercentage: 0.9, categoryPercentage: 0.9,
            minBarLength: 3,
          }],
        },
        options: {
          indexAxis: "y", responsive: true, maintainAspectRatio: false,
          scales: { x: timeAxis, y: { type: "category", grid: { display: false } } },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: {
              title: function (items) { var x = u[items[0].dataIndex]; return clock(x.start) + " – " + clock(x.end); },
              label: function (item) {
                var x = u[item.dataIndex];
                return x.emotion + " (" + Math.round(100 * x.emotion_confidence) + "%): " + x.text.slice(0, 80);
              },
            } },
          },
          onClick: clickToSeek, onHover: hoverPointer,
        },
      });
    }

    var sentiment = $("sentiment-chart");
    if (sentiment && u.length) {
      // Dataset 0: each utterance as a bar at its score across its own time span (start, end, gap);
      // dataset 1: a dashed line through the utterances' midpoints, to see the trend.
      var spans = [];
      u.forEach(function (x) {
        spans.push({ x: x.start, y: x.polarity }, { x: x.end, y: x.polarity }, { x: x.end, y: null });
      });
      var utteranceOf = function (item) { // a tooltip item (dataIndex) or a clicked element (index)
        var i = item.dataIndex !== undefined ? item.dataIndex : item.index;
        return item.datasetIndex === 0 ? u[Math.floor(i / 3)] : u[i];
      };
      new Chart(sentiment, {
        type: "line",
        data: {
          datasets: [{
            label: "Sentiment per utterance",
            data: spans, spanGaps: false, borderWidth: 5, pointRadius: 0, pointHitRadius: 8,
            segment: { borderColor: function (ctx) { return sentimentColor(u[Math.floor(ctx.p0DataIndex / 3)].sentiment); } },
          }, {
            label: "Trend",
            data: u.map(function (x) { return { x: (x.start + x.end) / 2, y: x.polarity }; }),
            borderColor: "#adb5bd", borderDash: [4, 4], borderWidth: 1.5, tension: 0.25,
            pointBackgroundColor: u.map(function (x) { return sentimentColor(x.sentiment); }),
            pointBorderColor: "#fff", pointRadius: 5, pointHoverRadius: 7,
          }],
        },
        options: {
          responsive: true, maintainAspectRatio: false,
          interaction: { mode: "nearest", intersect: false, axis: "x" },
          scales: {
            x: timeAxis,
            y: { min: -1, max: 1, ticks: { stepSize: 1, callback: function (v) { return v > 0 ? "positive" : v < 0 ? "negative" : "neutral"; } } },
          },
          plugins: {
            legend: { display: false },
            tooltip: { filter: function (item) { return item.datasetIndex === 1; }, callbacks: {
              title: function (items) { var x = utteranceOf(items[0]); return clock(x.start) + " – " + clock(x.end); },
              label: function (item) { var x = utteranceOf(item); return x.sentiment + " (" + x.polarity.toFixed(2) + "): " + x.text.slice(0, 80); },
            } },
          },
          onClick: function (event, elements) { if (elements.length) seek(utteranceOf(elements[0]).start); },
          onHover: hoverPointer,
        },
      });
    }

    var faceChart = $("face-chart");
    var faces = data.face_track || [];
    if (faceChart && faces.length) {
      // One dot per sampled frame with a face, on the same time axis as the speech charts.
      new Chart(faceChart, {
        type: "scatter",
        data: {
          datasets: [{
            label: "Face expression",
            data: faces.map(function (f) { return { x: f.time, y: f.emotion }; }),
            backgroundColor: faces.map(function (f) {
              var c = emotionColor(f.emotion);
              return f.confidence < 0.5 ? c + "66" : c; // weak predictions faded
            }),
            pointRadius: 5, pointHoverRadius: 7,
          }],
        },
        options: {
          responsive: true, maintainAspectRatio: false,
          scales: { x: timeAxis, y: { type: "category", labels: data.emotions, grid: { display: false } } },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: {
              title: function (items) { return clock(faces[items[0].dataIndex].time); },
              label: function (item) { var f = faces[item.dataIndex]; return "face: " + f.emotion + " (" + Math.round(100 * f.confidence) + "%)"; },
            } },
          },
          onClick: function (event, elements) { if (elements.length) seek(faces[elements[0].index].time); },
          onHover: hoverPointer,
        },
      });
    }

    var distribution = $("distribution-chart");
    if (distribution) {
      new Chart(distribution, {
        type: "bar",
        data: {
          labels: data.emotions,
          datasets: [{
            label: "Share of the speech",
            data: data.emotions.map(function (e) { return 100 * (data.emotion_distribution[e] || 0); }),
            backgroundColor: data.emotions.map(emotionColor),
            borderRadius: 4,
          }],
        },
        options: {
          indexAxis: "y", responsive: true, maintainAspectRatio: false,
          scales: { x: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } }, y: { grid: { display: false } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (item) { return item.parsed.x.toFixed(1) + "%"; } } } },
        },
      });
    }
  }

  function start() {
    var root = $("job");
    if (!root) return;
    if (root.dataset.finished === "true") showResults();
    else follow(root);
  }

  start();
})();
