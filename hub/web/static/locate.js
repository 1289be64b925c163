// "Use my location" on the page to find a space: asks the browser where the phone is and,
// when its owner allows it, sends the form with those coordinates instead of a place name.
// Without this script (or without a location) the place name typed works just the same;
// the coordinates go only to the hub, which asks no map service.
"use strict";
(function () {
  var button = document.getElementById("locate");
  var form = document.getElementById("find");
  if (!button || !form || !navigator.geolocation) return;
  var status = document.getElementById("locate-status");
  button.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = button.dataset.asking;
    navigator.geolocation.getCurrentPosition(function (where) {
      ["lat", "lon"].forEach(function (name) {
        var field = document.getElementById(name);
        field.name = field.dataset.name;
        field.value = (name === "lat" ? where.coords.latitude : where.coords.longitude).toFixed(5);
      });
      form.elements.near.value = "";
      form.submit();
    }, function () {
      status.textContent = button.dataset.failed;
    }, { timeout: 10000, maximumAge: 300000 });
  });
})();
