// The report form: say at once when chosen photos are too many or too large, before the
// upload (the server checks again; the form works without this script).
(function () {
  "use strict";
  var input = document.getElementById("photos");
  var out = document.getElementById("photos-check");
  if (!input || !out) return;
  var maxCount = parseInt(input.dataset.maxCount, 10);
  var maxBytes = parseFloat(input.dataset.maxMb) * 1024 * 1024;
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_m, key) { return values[key]; });
  }
  function mb(bytes) { return (bytes / 1048576).toFixed(1).replace(/\.0$/, ""); }
  function check() {
    var problems = [];
    var files = input.files || [];
    if (files.length > maxCount) {
      problems.push(fill(input.dataset.tooMany, { chosen: files.length, count: maxCount }));
    }
    for (var i = 0; i < files.length; i++) {
      if (files[i].size > maxBytes) {
        problems.push(fill(input.dataset.tooBig, {
          name: files[i].name, size: mb(files[i].size), limit: input.dataset.maxMb
        }));
      }
    }
    out.textContent = problems.join(" ");
    out.hidden = problems.length === 0;
    input.setCustomValidity(problems.join(" "));
    return problems.length === 0;
  }
  input.addEventListener("change", check);
  input.form.addEventListener("submit", function (event) {
    if (!check()) { event.preventDefault(); input.focus(); }
  });
})();
