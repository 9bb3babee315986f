/* Upload page: drag and drop, checks in the browser, an estimate (the video's length against the
   plan, the analysis time), a smooth upload progress bar, then the job page.
   Direct-to-S3 when the server offers it (POST /api/v1/uploads), else multipart to the API.
   The server checks everything again (ffprobe): these checks only save a pointless upload.
   Leaving the page mid-upload asks first; leaving anyway aborts the upload and tells the server
   (a beacon with the upload's token), which then creates and charges nothing (videos.abandon). */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("id_file");
  var zone = document.getElementById("dropzone");
  var chosen = document.getElementById("file-chosen");
  var estimate = document.getElementById("file-estimate");
  var errorBox = document.getElementById("upload-error");
  var statusBox = document.getElementById("upload-status");
  var label = document.getElementById("upload-label");
  var detail = document.getElementById("upload-detail");
  var bar = document.getElementById("upload-progress");
  var pct = document.getElementById("upload-pct");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var maxDuration = parseFloat(form.dataset.maxDuration);
  var remainingSeconds = parseFloat(form.dataset.remainingSeconds);
  var analysisRate = parseFloat(form.dataset.analysisRate);
  var extensions = form.dataset.extensions.split(",");
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var busy = false; // from the submit until the job page opens (or the upload fails)
  var opening = false; // going to the job page: not a "leave"
  var token = ""; // this upload's id for the server, if the page is left (videos/abandon.py)
  var requests = []; // what to abort when the page is left
  var duration = null; // the chosen video's length, when the browser can read it

  function formatBytes(n) {
    if (n >= 1024 * 1024 * 1024) return (n / 1024 / 1024 / 1024).toFixed(1) + " GB";
    if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KB";
    return n + " bytes";
  }

  function clock(seconds) {
    var total = Math.max(0, Math.round(seconds));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var mm = h ? (m < 10 ? "0" : "") + m : String(m);
    return (h ? h + ":" : "") + mm + ":" + (s < 10 ? "0" : "") + s;
  }

  function roughly(seconds) {
    if (seconds < 10) return "a few seconds";
    if (seconds < 90) return "about " + Math.round(seconds / 5) * 5 + " s";
    return "about " + Math.round(seconds / 60) + " min";
  }

  function showError(message) {
    errorBox.textContent = message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function problem(file) {
    if (!file) return "Choose a video file first.";
    var ext = (file.name.split(".").pop() || "").toLowerCase();
    var isVideo = (file.type && file.type.indexOf("video/") === 0) || extensions.indexOf(ext) >= 0;
    if (!isVideo) return "“" + file.name + "” is not a video file. Choose an MP4, MOV, MKV, WebM… file.";
    if (file.size === 0) return "“" + file.name + "” is empty.";
    if (file.size > maxBytes) {
      return "“" + file.name + "” is " + formatBytes(file.size) + "; the limit is " + formatBytes(maxBytes) + ".";
    }
    if (duration !== null && duration > maxDuration + 0.5) {
      return "“" + file.name + "” is " + clock(duration) + " long; your plan takes videos up to " + clock(maxDuration) + ".";
    }
    if (duration !== null && duration > remainingSeconds + 0.5) {
      return "“" + file.name + "” is " + clock(duration) + " long, and " + (remainingSeconds / 60).toFixed(1) +
        " min of video are left this month.";
    }
    return "";
  }

  /* The video's length, read by the browser from the file's header (nothing is uploaded). */
  function readDuration(file, done) {
    var probe = document.createElement("video");
    var url = URL.createObjectURL(file);
    var finish = function (value) {
      URL.revokeObjectURL(url);
      probe.removeAttribute("src");
      done(value);
    };
    probe.preload = "metadata";
    probe.muted = true;
    probe.addEventListener("loadedmetadata", function () { finish(isFinite(probe.duration) ? probe.duration : null); });
    probe.addEventListener("error", function () { finish(null); });
    probe.src = url;
  }

  function describe() {
    var file = input.files[0];
    duration = null;
    chosen.textContent = file ? file.name + " · " + formatBytes(file.size) : "";
    estimate.textContent = "";
    showError(file ? problem(file) : "");
    if (!file || problem(file)) return;
    readDuration(file, function (seconds) {
      if (input.files[0] !== file) return; // another file was chosen meanwhile
      duration = seconds;
      if (seconds === null) {
        estimate.textContent = "The server reads the video's length once it is uploaded.";
      } else {
        estimate.textContent = clock(seconds) + " long · the analysis takes " +
          roughly(5 + seconds * analysisRate) + " after the upload · " +
          (Math.max(0, remainingSeconds - seconds) / 60).toFixed(1) + " min of video left this month after it.";
      }
      showError(problem(file));
    });
  }

  input.addEventListener("change", describe);
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (!event.dataTransfer || !event.dataTransfer.files.length || busy) return;
    input.files = event.dataTransfer.files; // the same input the no-JS form posts
    describe();
  });

  /* --- Progress: the bar moves every frame, towards where the upload is by now at its measured
     speed (progress events are sparse: a fast upload reports 0%, 5% and done), never backwards,
     never far ahead of what was reported. --- */
  var meter = { shown: 0, loaded: 0, total: 0, at: 0, rate: 0, frame: null };

  function setBar(fraction) {
    var value = Math.min(100, Math.round(1000 * fraction) / 10);
    bar.value = value;
    pct.textContent = Math.floor(value) + "%";
  }

  function reported(loaded, total) {
    var now = performance.now();
    if (meter.at && now > meter.at && loaded > meter.loaded) {
      var speed = (loaded - meter.loaded) / ((now - meter.at) / 1000);
      meter.rate = meter.rate ? 0.7 * meter.rate + 0.3 * speed : speed;
    }
    meter.loaded = loaded;
    meter.total = total;
    meter.at = now;
    if (meter.rate && total) {
      detail.textContent = formatBytes(loaded) + " of " + formatBytes(total) + " · " +
        roughly((total - loaded) / meter.rate) + " left";
    }
    if (!meter.frame) meter.frame = window.requestAnimationFrame(animate);
  }

  function animate() {
    meter.frame = null;
    if (!meter.total) return;
    var now = performance.now();
    var expected = (meter.loaded + meter.rate * (now - meter.at) / 1000) / meter.total;
    var goal = Math.min(expected, meter.loaded / meter.total + 0.1, 0.995);
    meter.shown = Math.max(meter.shown, meter.shown + (goal - meter.shown) * 0.2);
    setBar(meter.shown);
    meter.frame = window.requestAnimationFrame(animate);
  }

  function stopMeter() {
    if (meter.frame) window.cancelAnimationFrame(meter.frame);
    meter = { shown: 0, loaded: 0, total: 0, at: 0, rate: 0, frame: null };
  }

  function serverIsChecking() {
    stopMeter();
    setBar(1); // a moment at 100%: the upload itself is done
    label.textContent = "Uploaded. Checking the video…";
    detail.textContent = "Leaving now still cancels it: nothing is analysed or counted.";
    window.setTimeout(function () {
      if (opening || !busy) return;
      bar.removeAttribute("value"); // indeterminate while the server runs ffprobe and queues
      pct.textContent = "";
    }, 400);
  }

  /* XMLHttpRequest, not fetch: only XHR reports upload progress. */
  function send(url, body, withCsrf) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      requests.push(xhr);
      xhr.open("POST", url);
      if (withCsrf) {
        xhr.setRequestHeader("X-CSRFToken", csrfToken);
        xhr.setRequestHeader("X-Upload-Token", token);
        xhr.setRequestHeader("Accept", "application/json");
      }
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) reported(event.loaded, event.total);
      });
      xhr.upload.addEventListener("load", serverIsChecking);
      xhr.addEventListener("load", function () { resolve(xhr); });
      xhr.addEventListener("error", function () { resolve(xhr); }); // status 0
      xhr.addEventListener("abort", function () { resolve(xhr); });
      xhr.send(body);
    });
  }

  function postJson(url, data) {
    var controller = "AbortController" in window ? new AbortController() : null;
    if (controller) requests.push(controller);
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json", Accept: "application/json",
        "X-CSRFToken": csrfToken, "X-Upload-Token": token,
      },
      body: JSON.stringify(data),
      signal: controller ? controller.signal : undefined,
    });
  }

  function errorMessage(status, text) {
    try {
      var body = JSON.parse(text);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (ignored) { /* not JSON: a proxy's page */ }
    if (status === 0) return "The connection failed. Check your network and try again.";
    if (status === 413) return "The file is too large for the server.";
    return "The upload failed (HTTP " + status + "). Please try again.";
  }

  function openJob(jobId) {
    opening = true;
    label.textContent = "Uploaded. Opening the analysis…";
    window.location.assign(form.dataset.jobUrl.replace("00000000-0000-0000-0000-000000000000", jobId));
  }

  function multipartUpload(file) {
    var body = new FormData();
    body.append("file", file, file.name);
    return send(form.dataset.apiAnalyses, body, true).then(function (xhr) {
      if (xhr.status !== 202) throw new Error(errorMessage(xhr.status, xhr.responseText));
      return JSON.parse(xhr.responseText).id;
    });
  }

  function directUpload(file, slot) {
    var body = new FormData();
    Object.keys(slot.fields).forEach(function (name) { body.append(name, slot.fields[name]); });
    body.append("file", file); // S3 wants the file last
    return send(slot.url, body, false).then(function (xhr) {
      if (xhr.status === 0) return multipartUpload(file); // e.g. bucket without CORS: go through us
      if (xhr.status < 200 || xhr.status >= 300) {
        throw new Error("The storage service refused the upload (HTTP " + xhr.status + ").");
      }
      return postJson(form.dataset.apiAnalyses, { upload_id: slot.upload_id }).then(function (response) {
        return response.text().then(function (text) {
          if (response.status !== 202) throw new Error(errorMessage(response.status, text));
          return JSON.parse(text).id;
        });
      });
    });
  }

  function start(file) {
    return postJson(form.dataset.apiUploads, { filename: file.name }).then(function (response) {
      if (response.status === 201) return response.json().then(function (slot) { return directUpload(file, slot); });
      if (response.status === 409) return multipartUpload(file); // no S3: send it to us
      return response.text().then(function (text) { throw new Error(errorMessage(response.status, text)); });
    });
  }

  function newToken() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var hex = "";
    for (var i = 0; i < 32; i += 1) hex += Math.floor(Math.random() * 16).toString(16);
    return hex;
  }

  /* Leaving mid-upload: the browser asks first; leaving anyway aborts and tells the server. */
  window.addEventListener("beforeunload", function (event) {
    if (!busy || opening) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers need it set to show their dialog
  });
  window.addEventListener("pagehide", function () {
    if (!busy || opening) return;
    requests.forEach(function (request) { request.abort(); });
    var beacon = new FormData();
    beacon.append("token", token);
    beacon.append("csrfmiddlewaretoken", csrfToken);
    if (navigator.sendBeacon) navigator.sendBeacon(form.dataset.abandonUrl, beacon);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var file = input.files[0];
    var message = problem(file);
    showError(message);
    if (message) { input.focus(); return; }
    busy = true;
    token = newToken();
    requests = [];
    submit.disabled = true;
    input.disabled = true;
    statusBox.hidden = false;
    label.textContent = "Uploading " + file.name + "…";
    detail.textContent = "Stay on this page until the upload is done: leaving cancels it.";
    stopMeter();
    setBar(0);
    start(file).then(openJob).catch(function (error) {
      busy = false;
      stopMeter();
      submit.disabled = false;
      input.disabled = false;
      statusBox.hidden = true;
      showError(error.message || "The upload failed. Please try again.");
    });
  });
})();
