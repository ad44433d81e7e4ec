// The admin dashboard's charts (templates/analytics/admin_charts.html), drawn with the vendored uPlot from the
// JSON the page embeds (json_script "zg-charts-data"). Colours come from the admin's CSS variables, so the
// light and dark themes both work.
(function () {
  var source = document.getElementById("zg-charts-data");
  var section = document.querySelector("[data-testid=dashboard-charts]");
  if (!source || !section || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var lang = document.documentElement.lang || "en";
  var css = getComputedStyle(document.documentElement);
  function color(name, fallback) { return (css.getPropertyValue(name) || "").trim() || fallback; }
  var ink = color("--body-quiet-color", "#666");
  var grid = color("--hairline-color", "#e8e8e8");
  var palette = {
    main: color("--primary", "#79aec8"),
    second: color("--error-fg", "#ba2121"),
    third: color("--secondary", "#417690"),
  };
  function label(name) { return section.getAttribute("data-label-" + name) || name; }
  var units = ["B", "KB", "MB", "GB", "TB"];
  function size(n) {
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + units[i];
  }
  var number = new Intl.NumberFormat(lang);
  function count(v) { return Math.round(v) === v ? number.format(v) : ""; }
  function znc(v) { return number.format(v); }
  function day(ts) {
    return new Date(ts * 1000).toLocaleDateString(lang, { day: "numeric", month: "short", timeZone: "UTC" });
  }
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 48] }) : undefined;
  var axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };

  // Categories (days, durations, users) sit on x = 0, 1, 2...; the axis writes each one's name.
  function draw(el, names, series, format, opts) {
    opts = opts || {};
    var xs = names.map(function (_, i) { return i; });
    function options() {
      return {
        width: Math.max(240, el.clientWidth),
        height: 220,
        legend: { show: series.length > 1, live: false },
        cursor: { y: false },
        scales: {
          x: { time: false, range: function () { return [-0.5, Math.max(0.5, xs.length - 0.5)]; } },
          y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(1, max * 1.1)]; } },
        },
        axes: [
          Object.assign({}, axis, {
            space: opts.space || 50,
            incrs: [1, 2, 5, 7, 10, 15],
            values: function (u, splits) { return splits.map(function (v) { return names[v] != null ? names[v] : ""; }); },
          }),
          Object.assign({}, axis, { size: 64, values: function (u, splits) { return splits.map(format); } }),
        ],
        series: [{ label: "" }].concat(series.map(function (s) {
          return {
            label: s.label,
            stroke: s.color,
            fill: s.bars ? s.color + "88" : undefined,
            width: s.bars ? 1 : 2,
            paths: s.bars ? bars : undefined,
            points: { show: !s.bars },
            value: function (u, v) { return v == null ? "" : format(v); },
          };
        })),
      };
    }
    var chart = new uPlot(options(), [xs].concat(series.map(function (s) { return s.values; })), el);
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(240, el.clientWidth), height: 220 });
    });
    return chart;
  }

  var days = data.days.map(day);
  function at(id) { return document.getElementById(id); }
  draw(at("zg-chart-revenue"), days, [
    { label: label("revenue"), values: data.revenue, color: palette.main },
    { label: label("refunds"), values: data.refunds, color: palette.second },
  ], znc);
  draw(at("zg-chart-durations"), data.durations.labels, [
    { label: label("tokens"), values: data.durations.counts, color: palette.third, bars: true },
  ], count, { space: 30 });
  draw(at("zg-chart-dau"), days, [{ label: label("users"), values: data.dau, color: palette.main }], count);
  draw(at("zg-chart-requests"), days, [
    { label: label("requests"), values: data.requests, color: palette.third, bars: true },
  ], count);
  draw(at("zg-chart-top-users"), data.top_users.labels, [
    { label: label("traffic"), values: data.top_users.bytes, color: palette.main, bars: true },
  ], size, { space: 30 });
})();
