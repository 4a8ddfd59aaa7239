// The report's parallel-coordinates plot (analysis/explore.py): SVG and brushing, no library.
(() => {
  const data = JSON.parse(document.getElementById("parcoords-data").textContent);
  const W = 1100, H = 360, top = 30, bottom = 40, left = 60, right = 60;
  const n = data.axes.length, gap = (W - left - right) / Math.max(1, n - 1);
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, parent) => {
    const node = document.createElementNS(ns, tag);
    for (const k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  };
  const scale = (axis) => {
    const vals = axis.values.filter((v) => v !== null);
    if (axis.kind === "category") {
      const cats = [...new Set(vals)].sort();
      const step = (H - top - bottom) / Math.max(1, cats.length - 1);
      axis.ticks = cats.map((c, i) => [c, H - bottom - (cats.length > 1 ? i * step : (H - top - bottom) / 2)]);
      return (v) => (v === null ? null : axis.ticks[cats.indexOf(v)][1]);
    }
    const f = axis.kind === "log" ? Math.log10 : (x) => x;
    let lo = Math.min(...vals.map(f)), hi = Math.max(...vals.map(f));
    if (lo === hi) { lo -= 1; hi += 1; }
    const y = (v) => H - bottom - ((f(v) - lo) / (hi - lo)) * (H - top - bottom);
    const distinct = [...new Set(vals)].sort((a, b) => a - b);
    const few = distinct.length <= 6 && !axis.metric;
    const at = few ? distinct : [0, 0.5, 1].map((t) => {
      const raw = lo + t * (hi - lo);
      return axis.kind === "log" ? Math.pow(10, raw) : raw;
    });  // few values (a grid's): each one; many (a search's): the ends and the middle
    axis.ticks = [];
    for (const v of at) {  // a label needs 12 px: closer ones are left out
      if (axis.ticks.every(([, ty]) => Math.abs(ty - y(v)) >= 12)) {
        axis.ticks.push([Number(v.toPrecision(4)).toString(), y(v)]);
      }
    }
    return (v) => (v === null ? null : y(v));
  };
  data.axes[n - 1].metric = true;  // the last axis: ends and middle, never each value
  const ys = data.axes.map(scale);
  const metric = data.axes[n - 1].values;
  const finite = metric.filter((v) => v !== null);
  const mlo = Math.log(Math.min(...finite)), mhi = Math.log(Math.max(...finite));
  const colour = (v) => {
    if (v === null) return "#bbb";
    const t = mhi > mlo ? (Math.log(v) - mlo) / (mhi - mlo) : 0;
    return `hsl(215, 70%, ${25 + 50 * t}%)`;
  };
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  document.getElementById("parcoords").appendChild(svg);
  const style = document.createElement("style");
  style.textContent = __STYLE__;
  document.head.appendChild(style);
  const lines = data.jobs.map((job, j) => {
    const pts = data.axes.map((a, i) => [left + i * gap, ys[i](a.values[j])]).filter((p) => p[1] !== null);
    const line = el("polyline", { class: "job", points: pts.map((p) => p.join(",")).join(" "), stroke: colour(metric[j]) }, svg);
    el("title", {}, line).textContent = `${job} (${data.status[j]}): ${metric[j] === null ? "-" : metric[j].toFixed(2)}`;
    line.addEventListener("mouseenter", () => line.classList.add("hover"));
    line.addEventListener("mouseleave", () => line.classList.remove("hover"));
    return line;
  });
  const ranges = data.axes.map(() => null);
  const note = document.querySelector("#parcoords-note small");
  const update = () => {
    let kept = 0;
    lines.forEach((line, j) => {
      const ok = ranges.every((r, i) => {
        if (!r) return true;
        const y = ys[i](data.axes[i].values[j]);
        return y !== null && y >= r[0] && y <= r[1];
      });
      line.classList.toggle("off", !ok);
      kept += ok;
    });
    note.textContent = `${kept} of ${lines.length} jobs shown`;
  };
  data.axes.forEach((axis, i) => {
    const x = left + i * gap;
    const g = el("g", {}, svg);
    el("line", { x1: x, x2: x, y1: top, y2: H - bottom, stroke: "#333" }, g);
    el("text", { x: x, y: top - 12, "text-anchor": "middle", "font-weight": "bold" }, g).textContent = axis.label;
    for (const [text, y] of axis.ticks) {
      el("text", { x: x - 6, y: y + 4, "text-anchor": "end" }, g).textContent = text;
    }
    const hit = el("rect", { x: x - 12, y: top, width: 24, height: H - top - bottom, fill: "transparent", cursor: "ns-resize" }, g);
    const box = el("rect", { class: "brush", x: x - 8, width: 16, y: 0, height: 0 }, g);
    let start = null;
    const at = (ev) => {
      const p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
      return Math.max(top, Math.min(H - bottom, p.matrixTransform(svg.getScreenCTM().inverse()).y));
    };
    hit.addEventListener("mousedown", (ev) => { start = at(ev); ev.preventDefault(); });
    svg.addEventListener("mousemove", (ev) => {
      if (start === null) return;
      const y = at(ev), lo = Math.min(start, y), hi = Math.max(start, y);
      box.setAttribute("y", lo); box.setAttribute("height", hi - lo);
      ranges[i] = hi - lo > 2 ? [lo, hi] : null;
      update();
    });
    svg.addEventListener("mouseup", () => {
      if (start !== null && !ranges[i]) { box.setAttribute("height", 0); }
      start = null;
    });
  });
  update();
  document.body.dataset.parcoords = String(lines.length);
})();
