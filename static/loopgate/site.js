// Every product page: confirmations before consequential actions, and the workflow
// switcher of the navigation bar.
//
// A form with data-confirm asks in the page's <dialog> before it is sent. Without this
// script the same form shows its confirm checkbox ([data-confirm-check]), which the
// server requires, so the action is confirmed either way. With it, the checkbox is
// hidden and ticked when the dialog is confirmed; cancelling leaves everything as it was.
//
//   data-confirm          the question's details (required)
//   data-confirm-title    the dialog's title
//   data-confirm-button   the confirm button's text
//   data-confirm-when-changed="ID"  ask only when the <select> ID differs from the value
//                         in data-confirm-current (what is in force now); {from} and
//                         {to} in the texts become the current and chosen option's text
//   data-confirm-danger="yes"  the confirm button looks destructive
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");

  function optionText(select, value) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) return select.options[i].text;
    }
    return value;
  }

  function fill(text, changes) {
    return (text || "").replace("{from}", changes.from).replace("{to}", changes.to);
  }

  function enhance(form) {
    var check = form.querySelector("[data-confirm-check]");
    var box = check ? check.querySelector('input[type="checkbox"]') : null;
    if (check) check.hidden = true;
    if (box) box.required = false;

    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmed === "yes") {
        delete form.dataset.confirmed;
        return;
      }
      var changes = { from: "", to: "" };
      var watched = form.dataset.confirmWhenChanged;
      if (watched) {
        var select = document.getElementById(watched);
        if (!select) return;
        var current = form.dataset.confirmCurrent;
        if (select.value === current) {
          if (box) box.checked = false;
          return;
        }
        changes = { from: optionText(select, current), to: optionText(select, select.value) };
      }
      event.preventDefault();
      var submitter = event.submitter || null;
      dialog.querySelector("#confirm-title").textContent =
        fill(form.dataset.confirmTitle, changes) || "Please confirm";
      dialog.querySelector("#confirm-text").textContent = fill(form.dataset.confirm, changes);
      var action = dialog.querySelector("[data-confirm-action]");
      action.textContent = fill(form.dataset.confirmButton, changes) || "Confirm";
      action.className = form.dataset.confirmDanger === "yes" ? "danger" : "primary";
      dialog.returnValue = "";
      dialog.onclose = function () {
        dialog.onclose = null;
        if (dialog.returnValue !== "confirm") {
          if (submitter) submitter.focus();
          return;
        }
        if (box) box.checked = true;
        form.dataset.confirmed = "yes";
        if (submitter) form.requestSubmit(submitter); else form.requestSubmit();
      };
      dialog.showModal();
    });
  }

  if (dialog && typeof dialog.showModal === "function") {
    document.querySelectorAll("form[data-confirm]").forEach(enhance);
  }

  // The workflow switcher (<details>): Escape or a click elsewhere closes it.
  document.querySelectorAll("details.switcher").forEach(function (details) {
    details.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && details.open) {
        details.open = false;
        details.querySelector("summary").focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (details.open && !details.contains(event.target)) details.open = false;
    });
  });
})();
