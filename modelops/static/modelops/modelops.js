// The models page: follow the active training runs live through the API. When one ends,
// say so with a link to reload (not a reload by itself: it would throw away whatever the
// admin is typing in a form); a finished run's version then shows up as the shadow.
(function () {
  "use strict";
  var configElement = document.getElementById("modelops-config");
  if (!configElement) return;
  var config = JSON.parse(configElement.textContent);
  var POLL_MS = 1500;

  function urlOf(runId) {
    return config.runUrl.replace(/\/0\/$/, "/" + runId + "/");
  }

  function fixed(value) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(3);
  }

  function show(row, run) {
    var last = run.progress.length ? run.progress[run.progress.length - 1] : null;
    var status = row.querySelector('[data-field="status"]');
    status.textContent = run.status;
    status.className = "badge status-" + run.status;
    var bar = row.querySelector('[data-field="progress"]');
    bar.max = run.epochs_total;
    bar.value = run.epoch;
    row.querySelector('[data-field="epoch"]').textContent = run.epoch + "/" + run.epochs_total;
    row.querySelector('[data-field="loss"]').textContent = last ? fixed(last.loss) : "—";
    row.querySelector('[data-field="val"]').textContent = last ? fixed(last.val_accuracy) : "—";
  }

  function finished(row, run) {
    var button = row.querySelector("form button");
    if (button) button.disabled = true;
    var notice = document.getElementById("run-notice");
    notice.hidden = false;
    notice.querySelector("[data-field=text]").textContent =
      "Training run " + run.id + " " + run.status +
      (run.result_version ? ": " + run.result_version + " is the new shadow challenger." : ".");
  }

  function follow(runId) {
    var row = document.querySelector('tr[data-run-id="' + runId + '"]');
    if (!row) return;
    function poll() {
      fetch(urlOf(runId), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (run) {
          if (!run) return setTimeout(poll, POLL_MS * 4);
          show(row, run);
          if (run.status === "queued" || run.status === "running") {
            setTimeout(poll, POLL_MS);
          } else {
            finished(row, run);
          }
        })
        .catch(function () { setTimeout(poll, POLL_MS * 4); });
    }
    poll();
  }

  config.activeRuns.forEach(follow);
})();
