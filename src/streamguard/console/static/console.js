// StreamGuard console: the overview's live figures over server-sent events. Our own code; it
// only sets textContent and builds elements, so nothing from the server is parsed as HTML.
(function () {
  "use strict";
  if (!document.querySelector("[data-field]")) return;
  var state = document.getElementById("live-state");
  function rows(body, values) {
    var linkAt = body.hasAttribute("data-link-column") ? Number(body.getAttribute("data-link-column")) : -1;
    var prefix = body.getAttribute("data-link") || "";
    body.replaceChildren.apply(body, values.map(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (value, i) {
        var cell = document.createElement(i === 0 && linkAt < 0 ? "th" : "td");
        if (i === linkAt) {
          var a = document.createElement("a");
          a.href = prefix + encodeURIComponent(value);
          a.textContent = value;
          cell.appendChild(a);
        } else {
          cell.textContent = value;
        }
        tr.appendChild(cell);
      });
      return tr;
    }));
  }
  var source = new EventSource("/events");
  source.addEventListener("overview", function (event) {
    var data = JSON.parse(event.data);
    if (data.error) { state.textContent = data.error; return; }
    var shown = data.shown;
    document.querySelectorAll("[data-field]").forEach(function (el) {
      el.textContent = shown[el.getAttribute("data-field")];
    });
    document.querySelectorAll("[data-rows]").forEach(function (body) {
      rows(body, shown[body.getAttribute("data-rows")]);
    });
    state.textContent = "live, " + new Date().toLocaleTimeString();
  });
  source.onerror = function () { state.textContent = "disconnected, retrying…"; };
})();
