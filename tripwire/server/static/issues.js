// The issues list: the box in the header ticks or unticks every issue.
(function () {
  "use strict";
  var all = document.getElementById("pick-all");
  if (!all) { return; }
  all.addEventListener("change", function () {
    var boxes = document.querySelectorAll("table.issues input[name=id]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
  });
})();
