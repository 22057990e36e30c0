/*
 * My verdicts: ask the workflow's admins to change an older verdict. Each row's form
 * posts to the change-request API with the session cookie and the CSRF token, and says
 * in its own status line what happened.
 */
(function () {
  "use strict";

  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  for (const form of document.querySelectorAll(".change-form")) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const out = form.querySelector(".change-status");
      const button = form.querySelector("button");
      button.disabled = true;
      out.textContent = "Sending…";
      try {
        const response = await fetch(form.dataset.url, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            Accept: "application/json",
            "Content-Type": "application/json",
            "X-CSRFToken": token ? token.value : "",
          },
          body: JSON.stringify({ label: form.elements.label.value, reason: form.elements.reason.value }),
        });
        const data = await response.json().catch(function () { return null; });
        if (response.ok) {
          out.textContent = "Asked: " + data.from_label + " → " + data.to_label + ".";
          form.elements.reason.disabled = true;
          form.elements.label.disabled = true;
          return;
        }
        out.textContent = (data && data.error && data.error.message) || "The server answered " + response.status;
      } catch (error) {
        out.textContent = "Not sent: " + error.message;
      }
      button.disabled = false;
    });
  }
})();
