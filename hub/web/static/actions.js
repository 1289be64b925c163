// The pages' few conveniences, each also done by hand without this script.
// Copy fields: a field of class "copyable" is selected whole when it gets the focus, and a
// button with data-copy="<the field's id>" copies it. The button shows only where the
// browser lets a page write the clipboard (https, or the hub on this machine); without it,
// or without this script, the field is still there to select and copy by hand.
"use strict";
document.querySelectorAll("input.copyable").forEach(function (field) {
  field.addEventListener("focus", function () { field.select(); });
});
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.dataset.copy);
  if (!field || !navigator.clipboard || !window.isSecureContext) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = button.dataset.done;
    });
  });
});
// A button with data-print prints the page (its print stylesheet leaves out the controls).
document.querySelectorAll("button[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
