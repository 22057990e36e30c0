// The case page: zoom and pan the image, and the saliency overlay where it is allowed.
(function () {
  "use strict";
  var image = document.getElementById("case-image");
  var frame = document.getElementById("image-frame");
  if (!image || !frame) return;
  var levels = [1.5, 2, 3, 4, 6, 8]; // times the fitted width
  var index = -1; // -1: fit to the frame
  var label = document.getElementById("zoom-level");

  function apply() {
    if (index < 0) {
      frame.classList.remove("zoomed");
      image.style.width = "";
      if (label) label.textContent = "fit";
      return;
    }
    var base = frame.clientWidth;
    frame.classList.add("zoomed");
    image.style.width = Math.round(base * levels[index]) + "px";
    if (label) label.textContent = Math.round(levels[index] * 100) + "%";
  }
  function zoom(step) {
    index = Math.max(-1, Math.min(levels.length - 1, index + step));
    apply();
  }
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(1); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(-1); });
  document.getElementById("zoom-fit").addEventListener("click", function () { index = -1; apply(); });
  image.addEventListener("click", function () { zoom(index < 0 ? 2 : -10); }); // 300% or fit
  frame.addEventListener("keydown", function (event) {
    if (event.key === "+" || event.key === "=") { zoom(1); event.preventDefault(); }
    if (event.key === "-") { zoom(-1); event.preventDefault(); }
    if (event.key === "0") { index = -1; apply(); event.preventDefault(); }
  });

  if (image.dataset.saliency === "1" && window.LoopgateSaliency) {
    var overlay = window.LoopgateSaliency.attach({
      image: image,
      button: document.getElementById("saliency-toggle")
    });
    overlay.setCase(image.dataset.caseId, true);
    document.addEventListener("keydown", function (event) {
      var tag = (event.target && event.target.tagName) || "";
      if (event.key === "h" && !/INPUT|TEXTAREA|SELECT/.test(tag)) overlay.toggle();
    });
  }
})();
