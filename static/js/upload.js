/* Upload page: drag and drop, checks in the browser, an upload progress bar, then the job page.
   Direct-to-S3 when the server offers it (POST /api/v1/uploads), else multipart to the API.
   The server checks everything again (ffprobe): these checks only save a pointless upload. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("id_file");
  var zone = document.getElementById("dropzone");
  var chosen = document.getElementById("file-chosen");
  var errorBox = document.getElementById("upload-error");
  var statusBox = document.getElementById("upload-status");
  var label = document.getElementById("upload-label");
  var bar = document.getElementById("upload-progress");
  var pct = document.getElementById("upload-pct");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var extensions = form.dataset.extensions.split(",");
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var busy = false;

  function formatBytes(n) {
    if (n >= 1024 * 1024 * 1024) return (n / 1024 / 1024 / 1024).toFixed(1) + " GB";
    if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KB";
    return n + " bytes";
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
    return "";
  }

  function describe() {
    var file = input.files[0];
    chosen.textContent = file ? file.name + " · " + formatBytes(file.size) : "";
    showError(file ? problem(file) : "");
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

  function setProgress(fraction) {
    var value = Math.round(100 * fraction);
    bar.value = value;
    pct.textContent = value + "%";
  }

  function serverIsChecking() {
    label.textContent = "Checking the video…";
    bar.removeAttribute("value"); // indeterminate while the server runs ffprobe and queues
    pct.textContent = "";
  }

  /* XMLHttpRequest, not fetch: only XHR reports upload progress. */
  function send(url, body, withCsrf) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      if (withCsrf) {
        xhr.setRequestHeader("X-CSRFToken", csrfToken);
        xhr.setRequestHeader("Accept", "application/json");
      }
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) setProgress(event.loaded / event.total);
      });
      xhr.upload.addEventListener("load", serverIsChecking);
      xhr.addEventListener("load", function () { resolve(xhr); });
      xhr.addEventListener("error", function () { resolve(xhr); }); // status 0
      xhr.send(body);
    });
  }

  function postJson(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(data),
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

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var file = input.files[0];
    var message = problem(file);
    showError(message);
    if (message) { input.focus(); return; }
    busy = true;
    submit.disabled = true;
    input.disabled = true;
    statusBox.hidden = false;
    label.textContent = "Uploading " + file.name + "…";
    setProgress(0);
    start(file).then(openJob).catch(function (error) {
      busy = false;
      submit.disabled = false;
      input.disabled = false;
      statusBox.hidden = true;
      showError(error.message || "The upload failed. Please try again.");
    });
  });
})();
