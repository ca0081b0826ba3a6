// The operating-point explorer: every number comes from the JSON block written by iaseg
// (iaseg.metrics.html.explorer_data); nothing is computed here but the drawing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var slider = document.getElementById("offset");
  var shown = document.getElementById("offset-value");
  var svg = document.getElementById("frontier");
  var NS = "http://www.w3.org/2000/svg";
  var W = 360, H = 240, L = 44, R = 12, T = 12, B = 34;

  function pct(v) { return v === null || v === undefined ? "-" : (100 * v).toFixed(1); }
  function setCell(td, v) {
    td.textContent = pct(v);
    td.setAttribute("data-value", v === null ? "null" : String(v));
  }
  function recallOf(p) { var g = p.groups[data.set]; return g ? g.recall : null; }

  var xs = data.points.map(recallOf), ys = data.points.map(function (p) { return p.mean.iou; });
  function finite(a) { return a.filter(function (v) { return v !== null; }); }
  var x0 = Math.min.apply(null, finite(xs)), x1 = Math.max.apply(null, finite(xs));
  var y0 = Math.min.apply(null, finite(ys)), y1 = Math.max.apply(null, finite(ys));
  if (x1 - x0 < 1e-6) { x0 -= 0.01; x1 += 0.01; }
  if (y1 - y0 < 1e-6) { y0 -= 0.01; y1 += 0.01; }
  function px(v) { return L + (W - L - R) * (v - x0) / (x1 - x0); }
  function py(v) { return H - B - (H - T - B) * (v - y0) / (y1 - y0); }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    svg.appendChild(e);
    return e;
  }
  el("line", {"class": "axis", x1: L, y1: H - B, x2: W - R, y2: H - B});
  el("line", {"class": "axis", x1: L, y1: T, x2: L, y2: H - B});
  el("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, data.set + " recall (%)");
  el("text", {x: 10, y: (T + H - B) / 2, transform: "rotate(-90 10 " + (T + H - B) / 2 + ")",
              "text-anchor": "middle"}, "mean IoU (%)");
  [[x0, "start"], [x1, "end"]].forEach(function (t) {
    el("text", {x: px(t[0]), y: H - B + 12, "text-anchor": t[1]}, pct(t[0]));
  });
  [y0, y1].forEach(function (v) { el("text", {x: L - 4, y: py(v) + 3, "text-anchor": "end"}, pct(v)); });
  var path = "";
  data.points.forEach(function (p, i) {
    if (xs[i] === null || ys[i] === null) { return; }
    path += (path ? " L" : "M") + px(xs[i]).toFixed(1) + " " + py(ys[i]).toFixed(1);
  });
  el("path", {"class": "curve", d: path});
  if (xs[data.start] !== null) { el("circle", {"class": "zero", cx: px(xs[data.start]), cy: py(ys[data.start]), r: 4}); }
  var marker = el("circle", {"class": "marker", r: 5, cx: -10, cy: -10});

  function show(i) {
    var p = data.points[i];
    slider.value = String(i);
    shown.textContent = data.labels[i];
    document.querySelectorAll("#explorer [data-group]").forEach(function (td) {
      var g = td.getAttribute("data-group"), k = td.getAttribute("data-metric");
      setCell(td, g === "mean" ? p.mean[k] : p.groups[g][k]);
    });
    document.querySelectorAll("#explorer [data-class]").forEach(function (td) {
      setCell(td, p.classes[td.getAttribute("data-class")][td.getAttribute("data-metric")]);
    });
    if (xs[i] !== null && ys[i] !== null) {
      marker.setAttribute("cx", px(xs[i]));
      marker.setAttribute("cy", py(ys[i]));
    }
    var cmd = document.getElementById("rule-command");
    cmd.textContent = data.command ? data.command.split("{offset}").join(data.labels[i])
                                   : "(offsets on top of the evaluated rule: see its calibration)";
  }
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  svg.addEventListener("click", function (ev) {
    var box = svg.getBoundingClientRect();
    var x = (ev.clientX - box.left) * W / box.width, y = (ev.clientY - box.top) * H / box.height;
    var best = 0, dist = Infinity;
    data.points.forEach(function (p, i) {
      if (xs[i] === null || ys[i] === null) { return; }
      var d = Math.pow(px(xs[i]) - x, 2) + Math.pow(py(ys[i]) - y, 2);
      if (d < dist) { dist = d; best = i; }
    });
    show(best);
  });
  show(data.start);
}());
