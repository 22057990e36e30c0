// Saliency overlay toggle for the review screen (or any page showing a case image).
//
//   <script src="{% static 'modelops/saliency.js' %}" defer></script>
//   var overlay = LoopgateSaliency.attach({
//     image: document.getElementById("case-image"),     // the <img> showing the case
//     button: document.getElementById("saliency-toggle") // a <button> (hidden until usable)
//   });
//   overlay.setCase(caseId, suggestionVisible);  // on every new case; hides the button
//                                                // unless the suggestion may be shown
//   overlay.toggle();                            // e.g. from a keyboard shortcut ("h")
//
// The overlay is a PNG of the same size as the case image (the image with the Grad-CAM
// heatmap blended in), so showing it swaps the <img> source and zoom/pan stay as they are.
// The API answers 202 while the worker computes it; this polls until it is ready. It
// answers 404 to anyone who may not see the model's suggestion (shadow mode), and the
// button then stays hidden.
(function (global) {
  "use strict";

  function attach(options) {
    var image = options.image;
    var button = options.button;
    var urlFor = options.urlFor || function (caseId) { return "/api/v1/cases/" + caseId + "/saliency/"; };
    var maxTries = options.maxTries || 30;
    var state = { caseId: null, original: null, overlay: null, on: false, token: 0 };

    function render() {
      if (!button) return;
      button.setAttribute("aria-pressed", state.on ? "true" : "false");
      button.classList.toggle("is-on", state.on);
    }

    function setBusy(busy) {
      if (button) button.setAttribute("aria-busy", busy ? "true" : "false");
    }

    function forget() {
      if (state.overlay) URL.revokeObjectURL(state.overlay);
      state.overlay = null;
    }

    function load(token, tries) {
      return fetch(urlFor(state.caseId), { credentials: "same-origin" }).then(function (response) {
        if (token !== state.token) return null;
        if (response.status === 202 && tries < maxTries) {
          var wait = parseFloat(response.headers.get("Retry-After") || "1") * 1000;
          return new Promise(function (resolve) { setTimeout(resolve, wait); })
            .then(function () { return load(token, tries + 1); });
        }
        if (!response.ok) {
          if (response.status === 404 && button) button.hidden = true;
          throw new Error("saliency overlay unavailable (" + response.status + ")");
        }
        return response.blob().then(function (blob) {
          if (token !== state.token) return null;
          state.overlay = URL.createObjectURL(blob);
          return state.overlay;
        });
      });
    }

    function show(on) {
      if (!state.caseId) return Promise.resolve();
      if (!on) {
        if (state.original) image.src = state.original;
        state.on = false;
        render();
        return Promise.resolve();
      }
      state.original = state.original || image.src;
      var token = state.token;
      var ready = state.overlay ? Promise.resolve(state.overlay) : load(token, 0);
      setBusy(true);
      return ready
        .then(function (url) {
          if (!url || token !== state.token) return;
          image.src = url;
          state.on = true;
          render();
        })
        .catch(function (error) {
          if (global.console) global.console.warn(error.message);
        })
        .then(function () { setBusy(false); });
    }

    function setCase(caseId, suggestionVisible) {
      state.token += 1;
      forget();
      state.caseId = suggestionVisible ? caseId : null;
      state.original = null;
      state.on = false;
      if (button) button.hidden = !suggestionVisible;
      render();
    }

    function toggle() { return show(!state.on); }

    if (button) {
      button.hidden = true;
      button.addEventListener("click", function () { toggle(); });
    }
    return { setCase: setCase, toggle: toggle, show: show };
  }

  global.LoopgateSaliency = { attach: attach };
})(window);
