/* Nguồn — small enhancements; every page works without them. */
(function () {
  "use strict";
  // Checkbox lists say what is chosen (count and names) as boxes are ticked.
  document.querySelectorAll("fieldset.choices").forEach(function (set) {
    var hint = document.getElementById(set.id + "-count");
    if (!hint) { return; }
    function update() {
      var names = [];
      set.querySelectorAll("input:checked").forEach(function (box) {
        names.push(box.parentNode.querySelector("span").textContent);
      });
      hint.querySelector(".n").textContent = names.length;
      hint.querySelector(".names").textContent = names.map(function (n) { return " · " + n; }).join("");
    }
    set.addEventListener("change", update);
  });
  // The step form shows the partner only for the steps that have one.
  var step = document.getElementById("step");
  var partner = document.querySelector(".partner-field");
  if (step && partner) {
    var show = function () { partner.hidden = !(step.value === "ship" || step.value === "receive"); };
    step.addEventListener("change", show);
    show();
  }
  // A new label stock redraws the preview without a click.
  var preset = document.getElementById("preset");
  if (preset && preset.form) {
    preset.addEventListener("change", function () { if (preset.value !== "custom") { preset.form.submit(); } });
  }
})();
