// Draws the monitoring charts from the page's json_script element (no inline script).
// Every chart repeats a table of the page, which stays the source without JavaScript.
(function () {
  "use strict";
  var source = document.getElementById("monitoring-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var labels = data.buckets.map(function (iso) {
    var d = new Date(iso);
    return d.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  });
  var palette = ["#1f5fa8", "#b3541e", "#2e7d32", "#7b1fa2", "#00838f", "#6d4c41", "#c62828", "#455a64"];
  var common = { animation: false, responsive: true, maintainAspectRatio: false };

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new window.Chart(canvas, config);
    }
  }

  draw("chart-volume", {
    type: "bar",
    data: {
      labels: labels,
      datasets: [
        { label: "cases", data: data.volume, backgroundColor: palette[0], yAxisID: "y" },
        { label: "automation rate", type: "line", data: data.automation_rate, borderColor: palette[1], yAxisID: "rate", spanGaps: true }
      ]
    },
    options: Object.assign({}, common, {
      scales: { y: { beginAtZero: true }, rate: { position: "right", min: 0, max: 1 } }
    })
  });

  var stages = Object.keys(data.latency);
  draw("chart-latency", {
    type: "line",
    data: {
      labels: labels,
      datasets: stages.map(function (stage, i) {
        return { label: stage.replace("_", " "), data: data.latency[stage], borderColor: palette[i % palette.length], spanGaps: true };
      })
    },
    options: Object.assign({}, common, { scales: { y: { beginAtZero: true, title: { display: true, text: "seconds" } } } })
  });

  var fallbackKinds = Object.keys(data.fallbacks || {});
  draw("chart-deadlines", {
    type: "bar",
    data: {
      labels: labels,
      datasets: [{ label: "deadlines missed", data: data.deadline_missed, backgroundColor: palette[6], stack: "missed" }].concat(
        fallbackKinds.map(function (kind, i) {
          return { label: "fallback " + kind, data: data.fallbacks[kind], backgroundColor: palette[(i + 1) % palette.length], stack: "fallback" };
        })
      )
    },
    options: Object.assign({}, common, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } })
  });

  var reference = data.reference.brightness;
  var brightness = [{ label: "brightness (mean)", data: data.inputs.brightness, borderColor: palette[0], spanGaps: true }];
  if (reference) {
    brightness.push({ label: "reference mean", data: labels.map(function () { return reference.mean; }), borderColor: palette[2], borderDash: [6, 4], pointRadius: 0 });
    brightness.push({ label: "reference ± 1 sd", data: labels.map(function () { return reference.mean - reference.std; }), borderColor: "#9e9e9e", borderDash: [2, 4], pointRadius: 0 });
    brightness.push({ label: "", data: labels.map(function () { return reference.mean + reference.std; }), borderColor: "#9e9e9e", borderDash: [2, 4], pointRadius: 0 });
  }
  draw("chart-brightness", {
    type: "line",
    data: { labels: labels, datasets: brightness },
    options: Object.assign({}, common, { plugins: { legend: { labels: { filter: function (item) { return item.text !== ""; } } } } })
  });

  draw("chart-mix", {
    type: "bar",
    data: {
      labels: labels,
      datasets: data.mix_labels.map(function (label, i) {
        return { label: label, data: data.mix.map(function (row) { return row[i]; }), backgroundColor: palette[i % palette.length] };
      })
    },
    options: Object.assign({}, common, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } })
  });

  draw("chart-confidence", {
    type: "bar",
    data: {
      labels: data.histogram_edges.slice(0, -1).map(function (edge) { return "≥ " + edge; }),
      datasets: [{ label: "cases", data: data.histogram, backgroundColor: palette[4] }]
    },
    options: common
  });

  var accuracy = data.accuracy.map(function (cell) { return { x: cell.bucket, y: cell.accuracy }; });
  var estimate = data.estimate.map(function (cell) { return { x: cell.at, y: cell.estimate }; });
  draw("chart-accuracy", {
    type: "line",
    data: {
      datasets: [
        { label: "audited accuracy", data: accuracy, borderColor: palette[2], showLine: true },
        { label: "label-free estimate", data: estimate, borderColor: palette[1], borderDash: [6, 4], showLine: true }
      ]
    },
    options: Object.assign({}, common, {
      parsing: { xAxisKey: "x", yAxisKey: "y" },
      scales: {
        x: { type: "category", labels: accuracy.concat(estimate).map(function (p) { return p.x; }).sort().filter(function (v, i, a) { return a.indexOf(v) === i; }), ticks: { callback: function (value) { var d = new Date(this.getLabelForValue(value)); return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); } } },
        y: { min: 0, max: 1 }
      }
    })
  });
})();
