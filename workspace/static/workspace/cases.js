// The case list's export buttons: download the export with a progress bar.
//
// A HEAD request says how many rows the export holds (and, for a zip, about how many
// bytes); the GET is read as a stream, counting lines (JSON Lines, CSV) or bytes (zip)
// against that. Without script the buttons are plain download links.
(function () {
  "use strict";
  var box = document.querySelector(".export-buttons");
  if (!box || !window.fetch || !window.ReadableStream) return;
  var progress = document.getElementById("export-progress");
  var bar = document.getElementById("export-bar");
  var status = document.getElementById("export-status");
  var cancel = document.getElementById("export-cancel");
  var controller = null;

  function say(text) { status.textContent = text; }
  function mb(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  function filename(response, fallback) {
    var header = response.headers.get("Content-Disposition") || "";
    var match = /filename="([^"]+)"/.exec(header);
    return match ? match[1] : fallback;
  }

  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 1000);
  }

  function countLines(chunk) {
    var n = 0;
    for (var i = 0; i < chunk.length; i++) if (chunk[i] === 10) n++;
    return n;
  }

  function run(link) {
    var format = link.dataset.format;
    var url = link.href;
    controller = new AbortController();
    progress.hidden = false;
    bar.removeAttribute("value");
    say("Counting the cases to export…");
    var rows = 0, total = null, bytesTotal = null;
    fetch(url, { method: "HEAD", credentials: "same-origin", signal: controller.signal })
      .then(function (head) {
        if (!head.ok) throw new Error("the export was refused (" + head.status + ")");
        total = parseInt(head.headers.get("X-Export-Rows") || "", 10);
        bytesTotal = parseInt(head.headers.get("X-Export-Bytes") || "", 10);
        return fetch(url, { credentials: "same-origin", signal: controller.signal });
      })
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(function (body) {
            throw new Error((body.error && body.error.message) || ("error " + response.status));
          });
        }
        var reader = response.body.getReader();
        var parts = [];
        var bytes = 0;
        var header = format === "csv" ? 1 : 0;
        function pump() {
          return reader.read().then(function (step) {
            if (step.done) return;
            parts.push(step.value);
            bytes += step.value.length;
            if (format === "zip") {
              if (bytesTotal > 0) {
                bar.max = 100;
                bar.value = Math.min(99, Math.floor(bytes * 100 / bytesTotal));
              }
              say(mb(bytes) + (bytesTotal > 0 ? " of about " + mb(bytesTotal) : "") + " (" + total + " images)");
            } else {
              rows += countLines(step.value);
              var done = Math.max(0, rows - header);
              if (total > 0) {
                bar.max = 100;
                bar.value = Math.min(99, Math.floor(done * 100 / total));
              }
              say(done + " of " + total + " cases · " + mb(bytes));
            }
            return pump();
          });
        }
        return pump().then(function () {
          bar.max = 100;
          bar.value = 100;
          var name = filename(response, "export." + format);
          say("Done: " + (format === "zip" ? total + " images, " : total + " cases, ") + mb(bytes) + " saved as " + name + ".");
          save(new Blob(parts, { type: response.headers.get("Content-Type") || "" }), name);
        });
      })
      .catch(function (error) {
        say(error.name === "AbortError" ? "Export cancelled." : "Export failed: " + error.message);
      })
      .then(function () { controller = null; });
  }

  box.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-format]");
    if (!link) return;
    event.preventDefault();
    if (controller) return;
    run(link);
  });
  cancel.addEventListener("click", function () { if (controller) controller.abort(); });
})();
