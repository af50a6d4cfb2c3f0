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
  // The charts: server-computed buckets (per-second rates), drawn here as SVG polylines.
  var svgNS = "http://www.w3.org/2000/svg";
  var chart = document.getElementById("chart");
  var dataEl = document.getElementById("chart-data");
  var charts = dataEl ? JSON.parse(dataEl.textContent || "{}") : {};
  var chosenLink = document.querySelector(".range.chosen");
  var chosen = chosenLink ? chosenLink.getAttribute("data-range") : "15m";
  var drawn = "";
  function el(name, attrs, text) {
    var node = document.createElementNS(svgNS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function stamp(epochS) {
    return new Date(epochS * 1000).toISOString().slice(11, 16) + " UTC";
  }
  function draw() {
    var data = charts[chosen];
    if (!chart || !data || !data.starts || !data.starts.length) return;
    var key = chosen + JSON.stringify(data.lines);
    if (key === drawn) return;
    drawn = key;
    var W = 900, H = 220, L = 50, R = 10, T = 10, B = 25, n = data.starts.length;
    var top = 0;
    Object.keys(data.lines).forEach(function (k) { data.lines[k].forEach(function (v) { top = Math.max(top, v); }); });
    top = top > 0 ? top * 1.1 : 1;
    var x = function (i) { return L + (W - L - R) * (n > 1 ? i / (n - 1) : 0); };
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    var nodes = [
      el("line", {"class": "grid", x1: L, x2: W - R, y1: y(0), y2: y(0)}),
      el("line", {"class": "grid", x1: L, x2: W - R, y1: y(top / 1.1), y2: y(top / 1.1)}),
      el("text", {x: 2, y: y(top / 1.1) + 4}, (top / 1.1).toFixed(top < 11 ? 2 : 0)),
      el("text", {x: 2, y: y(0) + 4}, "0"),
      el("text", {x: L, y: H - 6}, stamp(data.starts[0])),
      el("text", {x: W - R - 60, y: H - 6}, stamp(data.starts[n - 1]))
    ];
    Object.keys(data.lines).forEach(function (k) {
      var points = data.lines[k].map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); });
      nodes.push(el("polyline", {"class": k, points: points.join(" "), "data-line": k}));
    });
    chart.replaceChildren.apply(chart, nodes);
  }
  document.querySelectorAll(".range").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      chosen = link.getAttribute("data-range");
      document.querySelectorAll(".range").forEach(function (l) { l.classList.toggle("chosen", l === link); });
      history.replaceState(null, "", "/?range=" + chosen);
      draw();
    });
  });
  draw();
  var source = new EventSource("/events");
  source.addEventListener("overview", function (event) {
    var data = JSON.parse(event.data);
    if (data.error) { state.textContent = data.error; return; }
    if (data.charts) { charts = data.charts; draw(); }
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
