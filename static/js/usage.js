// The Usage page's charts: requests and traffic per day, from the JSON the page embeds (json_script).
(function () {
  var source = document.getElementById("usage-data");
  if (!source || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  function label(id) { return JSON.parse(document.getElementById(id).textContent); }
  var lang = document.documentElement.lang || "en";
  var units = ["B", "KB", "MB", "GB", "TB"];
  function size(n) {
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + units[i];
  }
  function day(ts) {
    return new Date(ts * 1000).toLocaleDateString(lang, { day: "numeric", month: "short", timeZone: "UTC" });
  }
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;

  function draw(el, name, values, color, format) {
    // x is the day's index: bars sit on whole days; the axis shows each day's date.
    var xs = data.t.map(function (_, i) { return i; });
    function options() {
      return {
        width: Math.max(240, el.clientWidth),
        height: 220,
        legend: { show: false },
        cursor: { y: false },
        scales: { x: { time: false, range: function () { return [-0.5, xs.length - 0.5]; } }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
        axes: [
          { values: function (u, splits) { return splits.map(function (v) { return data.t[v] ? day(data.t[v]) : ""; }); },
            space: 60, incrs: [1, 2, 5, 7, 10, 15] },
          { values: function (u, splits) { return splits.map(format); }, size: 64 },
        ],
        series: [
          {},
          { label: name, stroke: color, fill: color + "55", width: 1, paths: bars, points: { show: false },
            value: function (u, v) { return v == null ? "" : format(v); } },
        ],
      };
    }
    var chart = new uPlot(options(), [xs, values], el);
    window.addEventListener("resize", function () { chart.setSize({ width: Math.max(240, el.clientWidth), height: 220 }); });
    return chart;
  }
  function count(v) { return Math.round(v) === v ? String(v) : ""; }
  draw(document.getElementById("chart-requests"), label("usage-label-requests"), data.requests, "#2f6fdb", count);
  draw(document.getElementById("chart-traffic"), label("usage-label-traffic"), data.bytes, "#2a7a3a", size);
})();
