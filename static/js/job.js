/* Job page: live stage and progress while the job runs (polling the API, honouring Retry-After),
   then the results: key moments, charts (Chart.js) with a playhead, a player that stays in view
   and a transcript that seeks the video and follows it. */
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
      var queue = $("job-queue");
      if (queue) {
        queue.hidden = !job.queue;
        if (job.queue) {
          queue.textContent = "Position " + job.queue.position + " in the queue (" + job.queue.running +
            " running now) · about " + clock(job.queue.estimate_s) + " until done, from how fast recent analyses ran";
        }
      }
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
    var charts = []; // the time charts: they draw the playhead
    var dock = playerDock(player);

    function seek(seconds) {
      if (!player) return;
      player.currentTime = seconds;
      dock.wanted(); // a click that plays keeps the player in view
      var playing = player.play();
      if (playing && playing.catch) playing.catch(function () { /* not playable: position only */ });
      showTime(seconds);
    }

    document.querySelectorAll(".utterance-seek").forEach(function (button) {
      button.addEventListener("click", function () { seek(parseFloat(button.dataset.start)); });
    });
    // Key moments link to their transcript line (no script); with it, they play the moment.
    document.querySelectorAll(".moment-link").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        seek(parseFloat(link.dataset.start));
      });
    });

    var follow = followTranscript(items);
    function showTime(t) {
      follow(t);
      charts.forEach(function (chart) {
        chart.$playhead = t;
        chart.draw();
      });
    }
    if (player) {
      // timeupdate comes ~4 times a second: enough for the transcript; the playhead moves on
      // every frame while the video plays.
      player.addEventListener("timeupdate", function () { showTime(player.currentTime); });
      player.addEventListener("seeked", function () { showTime(player.currentTime); });
      var frame = null;
      var tick = function () {
        showTime(player.currentTime);
        frame = player.paused ? null : window.requestAnimationFrame(tick);
      };
      player.addEventListener("play", function () { if (!frame) frame = window.requestAnimationFrame(tick); });
    }
    if (typeof window.Chart === "undefined") return; // charts are extra; the transcript stays
    charts = drawCharts(data, seek);
  }

  /* The player docks in a corner ("mini") while it plays and its own card is out of view, so
     a click far down the page never plays a video nobody can see. */
  function playerDock(player) {
    var none = { wanted: function () {} };
    if (!player || !("IntersectionObserver" in window)) return none;
    var wrap = player.parentNode, slot = wrap.parentNode;
    var dismissed = false, slotVisible = true;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "mini-close";
    close.setAttribute("aria-label", "Put the player back in the page");
    close.textContent = "×";
    close.addEventListener("click", function () { dismissed = true; update(); });
    wrap.appendChild(close);

    function update() {
      var mini = !slotVisible && !dismissed && !player.paused;
      if (mini === wrap.classList.contains("mini")) return;
      if (mini) slot.style.minHeight = slot.offsetHeight + "px"; // the page does not jump
      else slot.style.minHeight = "";
      wrap.classList.toggle("mini", mini);
    }
    new IntersectionObserver(function (entries) {
      slotVisible = entries[entries.length - 1].intersectionRatio > 0.35;
      if (slotVisible) dismissed = false;
      update();
    }, { threshold: [0, 0.35, 0.7] }).observe(slot);
    player.addEventListener("play", update);
    player.addEventListener("pause", update);
    player.addEventListener("ended", update);
    return { wanted: function () { dismissed = false; window.setTimeout(update, 0); } };
  }

  /* Highlights the utterance being played and, unless the reader turned it off or is scrolling
     the transcript, scrolls the transcript (its own box, never the page) to keep it in view. */
  function followTranscript(items) {
    var box = $("transcript-scroll"), toggle = $("follow-playback");
    var current = null, userScrolledAt = 0;
    if (toggle) toggle.parentNode.hidden = false;
    if (box) {
      ["wheel", "touchmove", "keydown"].forEach(function (type) {
        box.addEventListener(type, function () { userScrolledAt = Date.now(); }, { passive: true });
      });
    }
    return function (t) {
      var active = null;
      items.forEach(function (item) {
        var on = t >= parseFloat(item.dataset.start) && t < parseFloat(item.dataset.end);
        item.classList.toggle("active", on);
        if (on && !active) active = item;
      });
      if (!active || active === current) return;
      current = active;
      if (!box || (toggle && !toggle.checked) || Date.now() - userScrolledAt < 4000) return;
      var top = active.offsetTop, bottom = top + active.offsetHeight;
      if (top < box.scrollTop || bottom > box.scrollTop + box.clientHeight) {
        // A third of the box above it, less when the line is tall: the whole line shows.
        var margin = Math.max(0, Math.min(box.clientHeight / 3, box.clientHeight - active.offsetHeight));
        box.scrollTo({ top: Math.max(0, top - margin), behavior: "smooth" });
      }
    };
  }

  /* A vertical line at the player's time on every time chart. */
  var playheadPlugin = {
    id: "playhead",
    afterDatasetsDraw: function (chart) {
      var t = chart.$playhead;
      if (t === undefined || t === null) return;
      var x = chart.scales.x.getPixelForValue(t), area = chart.chartArea;
      if (x < area.left || x > area.right) return;
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#1d2330";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x, area.top);
      ctx.lineTo(x, area.bottom);
      ctx.stroke();
      ctx.restore();
    },
  };

  /* Tooltips as HTML beside the chart element: the whole text (wrapped, never cut), placed above
     the hovered bar or dot (below when there is no room), so it never covers it. */
  function htmlTooltip(context) {
    var chart = context.chart, tooltip = context.tooltip, box = chart.canvas.parentNode;
    var tip = box.querySelector(".chart-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "chart-tip";
      box.appendChild(tip);
    }
    if (tooltip.opacity === 0 || !tooltip.dataPoints || !tooltip.dataPoints.length) {
      tip.hidden = true;
      return;
    }
    tip.textContent = "";
    (tooltip.title || []).forEach(function (line) {
      var strong = document.createElement("strong");
      strong.textContent = line;
      tip.appendChild(strong);
    });
    (tooltip.body || []).forEach(function (body) {
      body.lines.forEach(function (line) {
        var span = document.createElement("span");
        span.textContent = line;
        tip.appendChild(span);
      });
    });
    tip.hidden = false;
    var element = tooltip.dataPoints[0].element;
    var half = element.height ? element.height / 2 : ((element.options && element.options.radius) || 4) + 2;
    var x = tooltip.caretX, top = element.y - half - 8, bottom = element.y + half + 8;
    var left = Math.min(Math.max(0, x - tip.offsetWidth / 2), Math.max(0, box.clientWidth - tip.offsetWidth));
    tip.style.left = left + "px";
    // Above when it fits in the window, else below the element.
    var boxTop = box.getBoundingClientRect().top;
    tip.style.top = (boxTop + top - tip.offsetHeight >= 0 ? top - tip.offsetHeight : bottom) + "px";
  }

  function drawCharts(data, seek) {
    var Chart = window.Chart;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#5b6475";
    Chart.defaults.animation.duration = 300;
    var weakBelow = data.weak_below;
    var u = data.utterances;
    var charts = [];
    var emotionColor = function (e) { return e ? cssColor("--emotion-" + e) : "#ced4da"; };
    var sentimentColor = function (s) { return s ? cssColor("--sentiment-" + s) : "#ced4da"; };
    // Weak predictions faded: the same colour at 35% opacity (#rrggbb + alpha).
    var faded = function (color, confidence) { return confidence < weakBelow ? color + "59" : color; };
    var percent = function (p) { return Math.round(100 * p) + "%"; };
    var span = function (x) { return clock(x.start) + " – " + clock(x.end); };
    // Whole-second ticks at a readable step, so short clips don't repeat "0:01" labels.
    var step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find(function (s) { return data.duration / s <= 10; }) || 900;
    // One time axis for every chart, and one y-axis width, so the charts line up under each other.
    var timeAxis = {
      type: "linear", min: 0, max: Math.max(step, Math.ceil(data.duration / step) * step),
      title: { display: true, text: "Time in the video" },
      ticks: { stepSize: step, callback: function (v) { return clock(v); } },
    };
    var fixedWidth = function (scale) { scale.width = 92; };
    var tooltipBase = { enabled: false, external: htmlTooltip };
    function hoverPointer(event, elements) {
      event.native.target.style.cursor = elements.length ? "pointer" : "default";
    }
    function timeChart(canvas, config) {
      config.plugins = [playheadPlugin];
      config.options.responsive = true;
      config.options.maintainAspectRatio = false;
      config.options.onHover = hoverPointer;
      config.options.scales.x = timeAxis;
      config.options.scales.y.afterFit = fixedWidth;
      var chart = new Chart(canvas, config);
      charts.push(chart);
      return chart;
    }
    // Per-utterance values as flat segments over each utterance's own time (start, end, gap).
    function spans(value) {
      var points = [];
      u.forEach(function (x) {
        var y = value(x);
        points.push({ x: x.start, y: y }, { x: x.end, y: y }, { x: x.end, y: null });
      });
      return points;
    }
    var utteranceOf = function (item) { // a tooltip item (dataIndex) or a clicked element (index)
      var i = item.dataIndex !== undefined ? item.dataIndex : item.index;
      return item.datasetIndex === 0 ? u[Math.floor(i / 3)] : u[i];
    };

    // One bar per utterance across its own time span, on a row per emotion (words or voice).
    function emotionBars(canvas, items, rows, label, color, describe) {
      timeChart(canvas, {
        type: "bar",
        data: {
          labels: rows,
          datasets: [{
            label: label,
            data: items.map(function (x) { return { x: [x.start, x.end], y: describe(x).row }; }),
            backgroundColor: items.map(color),
            borderRadius: 4, borderSkipped: false, barPercentage: 0.9, categoryPercentage: 0.9,
            minBarLength: 3,
          }],
        },
        options: {
          indexAxis: "y",
          scales: { y: { type: "category", grid: { display: false } } },
          plugins: {
            legend: { display: false },
            tooltip: Object.assign({}, tooltipBase, { callbacks: {
              title: function (tips) { return span(items[tips[0].dataIndex]); },
              label: function (tip) { var x = items[tip.dataIndex]; return [describe(x).head, x.text]; },
            } }),
          },
          onClick: function (event, elements) { if (elements.length) seek(items[elements[0].index].start); },
        },
      });
    }

    var speakerChart = $("speaker-chart");
    if (speakerChart && u.length && data.speakers.length) {
      var spoken = u.filter(function (x) { return x.speaker; });
      var mood = function (x) { return x.combined_emotion || x.emotion; };
      emotionBars(speakerChart, spoken, data.speakers, "Who speaks when",
        function (x) { return faded(emotionColor(mood(x)), x.combined_emotion ? x.combined_confidence : x.emotion_confidence); },
        function (x) {
          return { row: x.speaker, head: x.speaker + (mood(x) ? ": " + mood(x) : "") };
        });
    }

    var timeline = $("timeline-chart");
    if (timeline && u.length) {
      var rows = data.emotions.slice();
      if (u.some(function (x) { return !x.emotion; })) rows.push(data.no_label);
      emotionBars(timeline, u, rows, "Utterance emotion",
        function (x) { return faded(emotionColor(x.emotion), x.emotion ? x.emotion_confidence : 1); },
        function (x) {
          return x.emotion
            ? { row: x.emotion, head: "Emotion: " + x.emotion + " (" + percent(x.emotion_confidence) + ")" }
            : { row: data.no_label, head: "Words: no text label" };
        });
    }

    var sentiment = $("sentiment-chart");
    if (sentiment && u.length) {
      // Dataset 0: each utterance as a bar at its score across its own time span;
      // dataset 1: a dashed line through the utterances' midpoints, to see the trend.
      timeChart(sentiment, {
        type: "line",
        data: {
          datasets: [{
            label: "Sentiment per utterance",
            data: spans(function (x) { return x.polarity; }), spanGaps: false, borderWidth: 5, pointRadius: 0, pointHitRadius: 8,
            segment: { borderColor: function (ctx) {
              var x = u[Math.floor(ctx.p0DataIndex / 3)];
              return faded(sentimentColor(x.sentiment), x.sentiment_confidence);
            } },
          }, {
            label: "Trend",
            data: u.map(function (x) { return { x: (x.start + x.end) / 2, y: x.polarity }; }),
            borderColor: "#adb5bd", borderDash: [4, 4], borderWidth: 1.5, tension: 0.25,
            pointBackgroundColor: u.map(function (x) { return faded(sentimentColor(x.sentiment), x.sentiment_confidence); }),
            pointBorderColor: "#fff", pointRadius: 5, pointHoverRadius: 7,
          }],
        },
        options: {
          interaction: { mode: "nearest", intersect: false, axis: "x" },
          scales: {
            y: { min: -1, max: 1, ticks: { stepSize: 1, callback: function (v) { return v > 0 ? "positive" : v < 0 ? "negative" : "neutral"; } } },
          },
          plugins: {
            legend: { display: false },
            tooltip: Object.assign({}, tooltipBase, {
              filter: function (item) { return item.datasetIndex === 1 && item.raw.y !== null; },
              callbacks: {
                title: function (items) { return span(utteranceOf(items[0])); },
                label: function (item) {
                  var x = utteranceOf(item);
                  return ["Sentiment: " + x.sentiment + " (" + percent(x.sentiment_confidence) + "), score " + x.polarity.toFixed(2), x.text];
                },
              },
            }),
          },
          onClick: function (event, elements) { if (elements.length) seek(utteranceOf(elements[0]).start); },
        },
      });
    }

    var voiceEmotion = $("voice-emotion-chart");
    var heard = u.filter(function (x) { return x.voice_emotion; });
    if (voiceEmotion && heard.length) {
      // The voice-emotion model's label per utterance, on the same rows as the words' chart.
      emotionBars(voiceEmotion, heard, data.emotions, "Voice emotion",
        function (x) { return faded(emotionColor(x.voice_emotion), x.voice_confidence); },
        function (x) {
          return { row: x.voice_emotion, head: "Voice: " + x.voice_emotion + " (" + percent(x.voice_confidence) + "), arousal " + percent(x.arousal) };
        });
    }

    var faceChart = $("face-chart");
    var faces = data.face_track || [];
    if (faceChart && faces.length) {
      // One dot per face read in a sampled frame, on the same time axis as the speech charts:
      // rows are emotions for one face, or one row per face track when there are several
      // (the dot's colour is then the expression).
      var tracks = [];
      faces.forEach(function (f) { if (tracks.indexOf(f.person) < 0) tracks.push(f.person); });
      tracks.sort(function (a, b) { return a - b; });
      var several = tracks.length > 1;
      var faceRow = function (f) { return several ? "Face " + f.person : f.emotion; };
      timeChart(faceChart, {
        type: "scatter",
        data: {
          datasets: [{
            label: "Face expression",
            data: faces.map(function (f) { return { x: f.time, y: faceRow(f) }; }),
            backgroundColor: faces.map(function (f) { return faded(emotionColor(f.emotion), f.confidence); }),
            pointRadius: 5, pointHoverRadius: 7,
          }],
        },
        options: {
          scales: { y: { type: "category", labels: several ? tracks.map(function (p) { return "Face " + p; }) : data.emotions, grid: { display: false } } },
          plugins: {
            legend: { display: false },
            tooltip: Object.assign({}, tooltipBase, { callbacks: {
              title: function (items) { return clock(faces[items[0].dataIndex].time); },
              label: function (item) { var f = faces[item.dataIndex]; return (several ? "Face " + f.person : "Face") + ": " + f.emotion + " (" + percent(f.confidence) + ")"; },
            } }),
          },
          onClick: function (event, elements) { if (elements.length) seek(faces[elements[0].index].time); },
        },
      });
    }

    var voice = $("voice-chart");
    if (voice && u.some(function (x) { return x.intensity !== null && x.intensity !== undefined; })) {
      var accent = cssColor("--accent");
      timeChart(voice, {
        type: "line",
        data: {
          datasets: [{
            label: "Voice intensity",
            data: spans(function (x) { return x.intensity === undefined ? null : x.intensity; }),
            spanGaps: false, borderWidth: 5, pointRadius: 0, pointHitRadius: 8, borderColor: accent,
          }],
        },
        options: {
          interaction: { mode: "nearest", intersect: false, axis: "x" },
          scales: { y: { suggestedMin: -1, suggestedMax: 1, title: { display: true, text: "vs. usual" } } },
          plugins: {
            legend: { display: false },
            tooltip: Object.assign({}, tooltipBase, {
              filter: function (item) { return item.raw.y !== null; },
              callbacks: {
                title: function (items) { return span(utteranceOf(items[0])); },
                label: function (item) {
                  var x = utteranceOf(item), parts = ["intensity " + (x.intensity >= 0 ? "+" : "") + x.intensity.toFixed(2)];
                  if (x.pitch_hz) parts.push(Math.round(x.pitch_hz) + " Hz");
                  if (x.rate_wps !== null && x.rate_wps !== undefined) parts.push(x.rate_wps.toFixed(1) + " words/s");
                  return ["Voice: " + parts.join(" · "), x.text];
                },
              },
            }),
          },
          onClick: function (event, elements) { if (elements.length) seek(utteranceOf(elements[0]).start); },
        },
      });
    }

    var distribution = $("distribution-chart");
    var shares = data.emotion_shares || [];
    if (distribution && shares.length) {
      new Chart(distribution, {
        type: "bar",
        data: {
          labels: shares.map(function (s) { return s.label; }),
          datasets: [{
            label: "Share of the speaking time",
            data: shares.map(function (s) { return s.percent; }),
            backgroundColor: shares.map(function (s) { return s.color === "none" ? "#ced4da" : emotionColor(s.color); }),
            borderRadius: 4,
          }],
        },
        options: {
          indexAxis: "y", responsive: true, maintainAspectRatio: false,
          scales: { x: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } }, y: { grid: { display: false } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (item) { return item.parsed.x.toFixed(0) + "% of the speaking time"; } } } },
        },
      });
    }
    return charts;
  }

  function start() {
    var root = $("job");
    if (!root) return;
    if (root.dataset.finished === "true") showResults();
    else follow(root);
  }

  start();
})();
