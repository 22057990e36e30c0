// The settings pages: copy a one-time secret, confirm a destructive action, label swatches.
(function () {
  "use strict";
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) { return; }
      source.select();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(source.value).then(done, function () {});
      }
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  document.querySelectorAll(".swatch[data-color]").forEach(function (swatch) {
    var color = swatch.getAttribute("data-color");
    if (/^#[0-9a-fA-F]{6}$/.test(color)) { swatch.style.backgroundColor = color; }
  });
}());
