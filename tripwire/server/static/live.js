// The live page: arrivals from /live/feed. Text only ever goes in through
// textContent, so nothing that arrives can become markup.
(function () {
  "use strict";
  var rows = document.getElementById("live-rows");
  var status = document.getElementById("live-status");
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }
  var source = new EventSource("/live/feed");
  source.onopen = function () { status.textContent = "connected"; };
  source.onerror = function () { status.textContent = "disconnected, retrying…"; };
  source.addEventListener("arrival", function (message) {
    var a = JSON.parse(message.data);
    var row = document.createElement("tr");
    cell(row, new Date(a.received * 1000).toISOString().replace("T", " ").slice(0, 19));
    cell(row, a.path);
    cell(row, a.items.join(", "));
    if (Number.isInteger(a.id)) {
      var td = document.createElement("td");
      var link = document.createElement("a");
      link.href = "/envelopes/" + a.id + "/";
      link.textContent = a.summary;
      td.appendChild(link);
      row.appendChild(td);
    } else {
      cell(row, a.summary);
    }
    cell(row, String(a.size), "num");
    rows.insertBefore(row, rows.firstChild);
    while (rows.childNodes.length > 200) { rows.removeChild(rows.lastChild); }
  });
})();
