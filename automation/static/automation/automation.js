// Progressive enhancement of the automation page: a class's threshold field is only
// editable while its rule is "own threshold". The form works the same without it.
(function () {
  "use strict";
  document.querySelectorAll(".class-rule").forEach(function (rule) {
    var number = rule.querySelector('input[type="number"]');
    var radios = rule.querySelectorAll('input[type="radio"]');
    if (!number || !radios.length) return;
    function sync() {
      var own = rule.querySelector('input[type="radio"][value="own"]');
      number.disabled = !(own && own.checked);
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  });
  var errors = document.getElementById("policy-errors");
  if (errors) { errors.setAttribute("tabindex", "-1"); errors.focus(); }
})();
