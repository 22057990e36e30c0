/*
 * Reviewer statistics: a workflow admin answers reviewers' change requests. Each row's
 * form posts the clicked decision (accept or decline) and the reason to the decide API
 * with the session cookie and the CSRF token, and says in its own status line what
 * happened.
 */
(function () {
  "use strict";

  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  for (const form of document.querySelectorAll(".change-decide")) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const decision = event.submitter ? event.submitter.value : "";
      const out = form.querySelector(".change-status");
      const buttons = form.querySelectorAll("button");
      for (const button of buttons) button.disabled = true;
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
          body: JSON.stringify({ decision: decision, reason: form.elements.reason.value }),
        });
        const data = await response.json().catch(function () { return null; });
        if (response.ok) {
          out.textContent = (data.decision === "accept" ? "Accepted: the verdict is now " + data.verdict_label : "Declined") +
            "; the case is " + data.case_status + (data.decision_label ? " (" + data.decision_label + ")" : "") + ".";
          form.elements.reason.disabled = true;
          for (const button of buttons) button.hidden = true;
          return;
        }
        out.textContent = (data && data.error && data.error.message) || "The server answered " + response.status;
      } catch (error) {
        out.textContent = "Not sent: " + error.message;
      }
      for (const button of buttons) button.disabled = false;
    });
  }
})();
