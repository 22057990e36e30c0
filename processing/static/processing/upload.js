// The zip upload form: send it with XMLHttpRequest to show the upload's progress, then
// put the server's results into the page.
//
// Without script the form posts normally and the upload page shows the same results:
// the server renders them once, and this script copies them from its answer.
(function () {
  "use strict";
  var form = document.querySelector("[data-upload-form]");
  if (!form || !window.XMLHttpRequest || !window.FormData || !window.DOMParser) return;
  var section = form.closest("section");
  var progress = section.querySelector("[data-upload-progress]");
  var bar = section.querySelector("[data-upload-bar]");
  var status = section.querySelector("[data-upload-status]");
  var cancel = section.querySelector("[data-upload-cancel]");
  var slot = section.querySelector("[data-upload-slot]");
  var button = form.querySelector("button[type=submit]");
  var maxBytes = parseInt(form.dataset.maxBytes || "0", 10);
  var request = null;

  function say(text) { status.textContent = text; }
  function mb(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  function finish() {
    request = null;
    button.disabled = false;
    cancel.hidden = true;
  }

  function show(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var results = doc.querySelector("[data-upload-slot] #upload-results");
    if (!results) return false;
    slot.replaceChildren(document.importNode(results, true));
    slot.querySelector("#upload-results").focus();
    return true;
  }

  form.addEventListener("submit", function (event) {
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    event.preventDefault();
    if (request) return;
    if (maxBytes && file.size > maxBytes) {
      progress.hidden = false;
      bar.value = 0;
      cancel.hidden = true;
      say(file.name + " is " + mb(file.size) + ", over the limit of " + mb(maxBytes) + ".");
      return;
    }
    slot.replaceChildren();
    progress.hidden = false;
    cancel.hidden = false;
    button.disabled = true;
    bar.max = 100;
    bar.value = 0;
    say("Uploading " + file.name + "…");
    request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      bar.value = Math.floor(e.loaded * 100 / e.total);
      say("Uploading " + file.name + ": " + mb(e.loaded) + " of " + mb(e.total));
    });
    request.upload.addEventListener("load", function () {
      bar.removeAttribute("value");
      cancel.hidden = true;
      say("Uploaded " + mb(file.size) + "; submitting the images…");
    });
    request.addEventListener("load", function () {
      bar.value = 100;
      if (show(request.responseText)) {
        say(request.status === 200 ? "Done." : "The upload was refused.");
      } else {
        say("The upload failed (HTTP " + request.status + ").");
      }
      finish();
    });
    request.addEventListener("error", function () {
      say("The upload failed: the connection closed (is the file over " + mb(maxBytes) + "?).");
      finish();
    });
    request.addEventListener("abort", function () {
      say("Upload cancelled.");
      finish();
    });
    request.send(new FormData(form));
  });
  cancel.addEventListener("click", function () { if (request) request.abort(); });
})();
