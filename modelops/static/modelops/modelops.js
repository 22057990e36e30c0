// The models page: follow the queued and running training runs through the API and keep
// their rows current: progress while they run, then their held-out accuracy, the version
// they produced or their error when they end. The page is not reloaded (that would throw
// away whatever the admin is typing); a notice links to the deployments, where the new
// shadow challenger appears on the next visit.
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
    var error = row.querySelector('[data-field="error"]');
    error.textContent = run.error ? run.error.slice(0, 160) : "";
    error.hidden = !run.error;
  }

  function showResult(row, run) {
    var metrics = run.metrics || {};
    var cell = row.querySelector('[data-field="heldout"]');
    cell.textContent = "";
    if (metrics.test) {
      cell.appendChild(document.createTextNode(fixed(metrics.test.accuracy) + " "));
      if (metrics.baseline_test) {
        var baseline = document.createElement("span");
        baseline.className = "muted";
        baseline.textContent =
          "(" + fixed(metrics.baseline_test.accuracy) + " " + (metrics.baseline || "") + ")";
        cell.appendChild(baseline);
      }
      cell.appendChild(document.createElement("br"));
      var n = document.createElement("span");
      n.className = "muted small";
      n.textContent = metrics.n_test + " test cases";
      cell.appendChild(n);
    } else {
      cell.textContent = "—";
    }
    row.querySelector('[data-field="result"]').textContent = run.result_version || "—";
  }

  function finished(row, run) {
    showResult(row, run);
    var form = row.querySelector("form");
    if (form) form.remove();
    var notice = document.getElementById("run-notice");
    notice.hidden = false;
    // A new query string, so that following the link loads the page afresh.
    notice.querySelector("a").href =
      window.location.pathname + "?after-run=" + run.id + "#deployments-title";
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
