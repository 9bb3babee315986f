/* Copy buttons: <button data-copy="input-id">. Clipboard API where allowed (HTTPS or localhost),
   else select the text and use the older execCommand. */
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    function done(ok) {
      if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the key and copy it.";
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(legacyCopy(field)); });
    } else {
      done(legacyCopy(field));
    }
  });
});

/* A masked field (a secret shown as dots) is copied as text: browsers refuse to copy a password. */
function legacyCopy(field) {
  var masked = field.type === "password";
  if (masked) field.type = "text";
  field.select();
  var ok = document.execCommand("copy");
  if (masked) field.type = "password";
  return ok;
}

/* Show / hide buttons: <button data-reveal="input-id" aria-pressed="false">. */
document.querySelectorAll("[data-reveal]").forEach(function (button) {
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-reveal"));
    var show = field.type === "password";
    field.type = show ? "text" : "password";
    button.textContent = show ? "Hide" : "Show";
    button.setAttribute("aria-pressed", show ? "true" : "false");
  });
});
