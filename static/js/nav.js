// The officers' grouped menu: one group open at a time, closed by a click elsewhere or Esc.
// Without this script each group still opens and closes by itself (<details>).
(function () {
  "use strict";
  var menus = document.querySelectorAll(".main-nav .menu details");
  function closeAll(except) {
    menus.forEach(function (m) { if (m !== except) m.open = false; });
  }
  menus.forEach(function (m) {
    m.addEventListener("toggle", function () { if (m.open) closeAll(m); });
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest(".main-nav .menu")) closeAll(null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeAll(null);
  });
})();
