// The models page: follow the active training runs live through the API, and reload the
// page when one ends (its version then shows up as the shadow challenger).
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
            setTimeout(function () { window.location.reload(); }, 800);
          }
        })
        .catch(function () { setTimeout(poll, POLL_MS * 4); });
    }
    poll();
  }

  config.activeRuns.forEach(follow);
})();
