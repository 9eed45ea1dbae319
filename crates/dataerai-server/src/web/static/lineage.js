// The lineage graph of the asset page: ancestors and descendants of one
// asset, fetched from GET /api/v1/assets/{id}/lineage (the same walk and
// redaction as every other client) and drawn as a layered directed graph in
// SVG. Without this script the page shows the same lineage as lists.
//
// Layout (Sugiyama style, hand-written, no library):
//   1. cycles are broken by reversing the back edges of a depth-first search;
//   2. layers by longest path from the origins (a node without origins is
//      pulled next to what was derived from it);
//   3. an edge spanning several layers gets a virtual node per layer between;
//   4. a few sweeps of barycentre ordering reduce crossings;
//   5. layers are columns (origins left, derived right), nodes stacked and
//      centred in them; edges are curves through their virtual nodes.
// All of it is linear in nodes + edges per sweep: 500 nodes lay out in a
// few milliseconds.
//
// Nodes are <a> links to their asset pages (focusable, Tab moves between
// them), coloured by record type (a legend under the graph); a node the
// viewer may not read is drawn locked, without a title and without a link.
// The canvas scrolls; "−", "+" and "Fit" zoom; dragging the background pans.

import { api } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 210;
const NODE_H = 40;
const GAP_X = 110;
const GAP_Y = 12;
/** Height a virtual node (a long edge passing a layer) takes. */
const VIRTUAL_H = 8;
const PALETTE_SIZE = 8;
const SWEEPS = 8;
/** Edge labels are drawn (besides the tooltips) only on small graphs. */
const MAX_LABELLED_EDGES = 40;

/**
 * Lay out `nodes` ({id}) and `edges` ({from_asset_id: dependent,
 * to_asset_id: origin}) left to right. Returns {width, height, nodes:
 * [{node, x, y, layer}], edges: [{edges: [...], points: [[x, y], ...],
 * reversed}]}; `points` go from the origin's right side to the dependent's
 * left side (reversed: drawn the other way because the edge closed a cycle).
 */
export function layout(nodes, edges) {
  const n = nodes.length;
  const index = new Map();
  nodes.forEach((node, i) => index.set(node.id, i));

  // Links origin -> dependent, one per pair (several relationship types
  // between the same two assets share one curve).
  const links = [];
  const byPair = new Map();
  for (const e of edges) {
    const s = index.get(e.to_asset_id);
    const t = index.get(e.from_asset_id);
    if (s === undefined || t === undefined || s === t) continue;
    const key = `${s} ${t}`;
    let link = byPair.get(key);
    if (!link) {
      link = { s, t, edges: [], reversed: false };
      byPair.set(key, link);
      links.push(link);
    }
    link.edges.push(e);
  }

  // 1. Break cycles: a link to a node still on the DFS stack is reversed.
  const outLinks = Array.from({ length: n }, () => []);
  for (const l of links) outLinks[l.s].push(l);
  const state = new Uint8Array(n); // 0 new, 1 on the stack, 2 done
  for (let start = 0; start < n; start++) {
    if (state[start]) continue;
    const stack = [[start, 0]];
    state[start] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < outLinks[v].length) {
        top[1] = i + 1;
        const l = outLinks[v][i];
        if (state[l.t] === 1) l.reversed = true;
        else if (state[l.t] === 0) {
          state[l.t] = 1;
          stack.push([l.t, 0]);
        }
      } else {
        state[v] = 2;
        stack.pop();
      }
    }
  }
  const succ = Array.from({ length: n }, () => []);
  const pred = Array.from({ length: n }, () => []);
  for (const l of links) {
    const [a, b] = l.reversed ? [l.t, l.s] : [l.s, l.t];
    l.a = a;
    l.b = b;
    succ[a].push(b);
    pred[b].push(a);
  }

  // 2. Longest-path layering in topological order (Kahn).
  const layer = new Int32Array(n);
  const indegree = pred.map((p) => p.length);
  const order = [];
  for (let v = 0; v < n; v++) if (indegree[v] === 0) order.push(v);
  for (let k = 0; k < order.length; k++) {
    const v = order[k];
    for (const w of succ[v]) {
      if (layer[v] + 1 > layer[w]) layer[w] = layer[v] + 1;
      if (--indegree[w] === 0) order.push(w);
    }
  }
  // A node without origins sits just left of its nearest derived node.
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k];
    if (pred[v].length === 0 && succ[v].length > 0) {
      let min = Infinity;
      for (const w of succ[v]) min = Math.min(min, layer[w]);
      layer[v] = min - 1;
    }
  }
  let layers = 0;
  for (let v = 0; v < n; v++) layers = Math.max(layers, layer[v] + 1);

  // 3. Virtual nodes: ids n, n+1, … with their layer.
  const vLayer = Array.from(layer);
  const up = Array.from({ length: n }, () => []); // neighbours one layer left
  const down = Array.from({ length: n }, () => []); // neighbours one layer right
  const addVertex = (l) => {
    vLayer.push(l);
    up.push([]);
    down.push([]);
    return vLayer.length - 1;
  };
  for (const l of links) {
    const chain = [l.a];
    for (let k = layer[l.a] + 1; k < layer[l.b]; k++) chain.push(addVertex(k));
    chain.push(l.b);
    for (let k = 0; k + 1 < chain.length; k++) {
      down[chain[k]].push(chain[k + 1]);
      up[chain[k + 1]].push(chain[k]);
    }
    l.chain = chain;
  }

  // Initial order: by the order of the nodes as given (nearest first), the
  // virtual nodes after the real ones.
  const columns = Array.from({ length: layers }, () => []);
  for (let v = 0; v < vLayer.length; v++) columns[vLayer[v]].push(v);
  const pos = new Float64Array(vLayer.length);
  const renumber = (col) => col.forEach((v, i) => (pos[v] = i));
  columns.forEach(renumber);

  // 4. Barycentre sweeps, alternately left to right and right to left.
  const weight = new Float64Array(vLayer.length);
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    const rightward = sweep % 2 === 0;
    for (let k = 0; k < layers; k++) {
      const c = rightward ? k : layers - 1 - k;
      const col = columns[c];
      const neighbours = rightward ? up : down;
      for (const v of col) {
        const ns = neighbours[v];
        if (ns.length === 0) weight[v] = pos[v];
        else {
          let sum = 0;
          for (const w of ns) sum += pos[w];
          weight[v] = sum / ns.length;
        }
      }
      col.sort((x, y) => weight[x] - weight[y] || pos[x] - pos[y]);
      renumber(col);
    }
  }

  // 5. Coordinates: columns left to right, each centred vertically.
  const heightOf = (v) => (v < n ? NODE_H : VIRTUAL_H);
  const colHeight = columns.map((col) =>
    col.reduce((h, v) => h + heightOf(v) + GAP_Y, 0) - (col.length ? GAP_Y : 0),
  );
  const height = Math.max(NODE_H, ...colHeight);
  const x = new Float64Array(vLayer.length);
  const y = new Float64Array(vLayer.length); // top edge
  columns.forEach((col, c) => {
    let at = (height - colHeight[c]) / 2;
    for (const v of col) {
      x[v] = c * (NODE_W + GAP_X);
      y[v] = at;
      at += heightOf(v) + GAP_Y;
    }
  });
  const width = Math.max(NODE_W, layers * NODE_W + (layers - 1) * GAP_X);

  const placedEdges = links.map((l) => {
    const points = l.chain.map((v, k) => {
      const mid = y[v] + heightOf(v) / 2;
      if (k === 0) return [x[v] + NODE_W, mid];
      if (k === l.chain.length - 1) return [x[v], mid];
      return [x[v] + NODE_W / 2, mid];
    });
    return { edges: l.edges, points, reversed: l.reversed, s: l.s, t: l.t };
  });
  return {
    width,
    height,
    nodes: nodes.map((node, v) => ({ node, x: x[v], y: y[v], layer: layer[v] })),
    edges: placedEdges,
  };
}

/** An SVG path through `points` as horizontal-tangent curves. */
function curve(points) {
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let k = 1; k < points.length; k++) {
    const [x0, y0] = points[k - 1];
    const [x1, y1] = points[k];
    const dx = (x1 - x0) / 2;
    d += ` C${x0 + dx},${y0} ${x1 - dx},${y1} ${x1},${y1}`;
  }
  return d;
}

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function html(name, attrs = {}, text) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function shorten(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Record types present, sorted, each with its palette slot. */
function palette(nodes) {
  const types = [...new Set(nodes.filter((n) => !n.redacted && n.record_type).map((n) => n.record_type))];
  types.sort();
  return new Map(types.map((t, i) => [t, i % PALETTE_SIZE]));
}

function nodeClass(node, colours) {
  if (node.redacted) return "node locked";
  if (!node.record_type) return "node rt-none";
  return `node rt-${colours.get(node.record_type)}`;
}

function edgeText(placed, byId) {
  const name = (id) => {
    const node = byId.get(id);
    return node && !node.redacted && node.title ? node.title : "a locked asset";
  };
  return placed.edges
    .map((e) => {
      const mode = e.analysis_mode ? ` (${e.analysis_mode})` : "";
      return `${name(e.from_asset_id)} ${e.type} ${name(e.to_asset_id)}${mode}`;
    })
    .join("\n");
}

/** Draw `lineage` (the REST answer) into a fresh <svg>; returns it. */
export function draw(lineage, rootId) {
  const started = performance.now();
  const placed = layout(lineage.nodes, lineage.edges);
  const layoutMs = performance.now() - started;
  const colours = palette(lineage.nodes);
  const byId = new Map(lineage.nodes.map((n) => [n.id, n]));
  const pad = 16;
  const width = placed.width + 2 * pad;
  const height = placed.height + 2 * pad;
  const rootTitle = byId.get(rootId)?.title || "this asset";
  const svg = el("svg", {
    class: "lineage-svg",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "group",
    "aria-label": `Lineage graph of ${rootTitle}: ${lineage.nodes.length} assets, ${lineage.edges.length} relationships`,
  });
  const defs = el("defs", {}, svg);
  const marker = el(
    "marker",
    {
      id: "lineage-arrow",
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    },
    defs,
  );
  el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }, marker);
  // Long titles are clipped at the node's edge, not shortened: the link's
  // text stays the whole title (its accessible name starts with it).
  const clip = el("clipPath", { id: "lineage-node-clip" }, defs);
  el("rect", { x: 0, y: 0, width: NODE_W - 8, height: NODE_H }, clip);
  const world = el("g", { transform: `translate(${pad},${pad})` }, svg);

  const edgeLayer = el("g", { class: "edges" }, world);
  const labelled = placed.edges.length <= MAX_LABELLED_EDGES;
  for (const e of placed.edges) {
    const g = el("g", { class: e.reversed ? "edge reversed" : "edge" }, edgeLayer);
    el("title", {}, g).textContent = edgeText(e, byId);
    const d = curve(e.points);
    el("path", { d, class: "edge-hit" }, g);
    const line = el("path", { d, class: "edge-line" }, g);
    // Arrows point from an origin to what was derived from it.
    line.setAttribute(e.reversed ? "marker-start" : "marker-end", "url(#lineage-arrow)");
    if (labelled) {
      const [x0, y0] = e.points[0];
      const [x1, y1] = e.points[1];
      const types = [...new Set(e.edges.map((r) => r.type))].join(", ");
      const label = el("text", { x: (x0 + x1) / 2, y: (y0 + y1) / 2 - 4, class: "edge-label" }, g);
      label.textContent = shorten(types, 16);
    }
  }

  const nodeLayer = el("g", { class: "nodes" }, world);
  for (const p of placed.nodes) {
    const node = p.node;
    const isRoot = node.id === rootId;
    let g;
    if (node.redacted) {
      g = el("g", { class: nodeClass(node, colours) }, nodeLayer);
      el("title", {}, g).textContent = "A locked asset: you may not read it";
    } else {
      g = el("a", { class: nodeClass(node, colours) + (isRoot ? " current" : ""), href: `/assets/${node.id}` }, nodeLayer);
      if (isRoot) g.setAttribute("aria-current", "page");
      // The tooltip, and the link's name: what it shows, then where it is.
      const where = isRoot ? "this asset" : `depth ${node.depth}`;
      el("title", {}, g).textContent = `${node.title || node.id} ${node.record_type || "no record type"} (${where})`;
    }
    g.setAttribute("transform", `translate(${p.x},${p.y})`);
    g.dataset.id = node.id;
    el("rect", { width: NODE_W, height: NODE_H, rx: 6, ry: 6 }, g);
    el("rect", { width: 6, height: NODE_H, rx: 3, ry: 3, class: "swatch" }, g);
    const title = el("text", { x: node.redacted ? 36 : 14, y: node.redacted ? 25 : 17, class: "node-title" }, g);
    if (node.redacted) {
      // A padlock, drawn (no emoji font needed).
      el("path", { d: "M17,18 v-4 a5,5 0 0 1 10,0 v4", class: "padlock-shackle" }, g);
      el("rect", { x: 14, y: 18, width: 16, height: 12, rx: 2, class: "padlock" }, g);
      title.textContent = "Locked";
    } else {
      title.textContent = node.title || node.id;
      title.setAttribute("clip-path", "url(#lineage-node-clip)");
      const sub = el("text", { x: 14, y: 32, class: "node-type", "clip-path": "url(#lineage-node-clip)" }, g);
      sub.textContent = node.record_type || "no record type";
    }
  }
  svg.dataset.layoutMs = layoutMs.toFixed(1);
  return { svg, colours, layoutMs };
}

function legend(colours, lineage) {
  const ul = html("ul", { class: "lineage-legend", "aria-label": "Legend" });
  const item = (cls, text) => {
    const li = html("li");
    li.appendChild(html("span", { class: `swatch-key ${cls}`, "aria-hidden": "true" }));
    li.appendChild(document.createTextNode(text));
    ul.appendChild(li);
  };
  for (const [type, slot] of colours) item(`rt-${slot}`, type);
  if (lineage.nodes.some((n) => !n.redacted && !n.record_type)) item("rt-none", "no record type");
  if (lineage.nodes.some((n) => n.redacted)) item("locked", "locked: you may not read it");
  item("current", "this asset");
  const li = html("li", { class: "muted" }, "Arrows point from an origin to what was derived from it.");
  ul.appendChild(li);
  return ul;
}

/** Zoom buttons and drag-to-pan for a scrollable canvas holding `svg`. */
function controls(canvas, svg, width, height) {
  let scale = 1;
  const apply = () => {
    svg.setAttribute("width", String(Math.round(width * scale)));
    svg.setAttribute("height", String(Math.round(height * scale)));
  };
  const bar = html("div", { class: "lineage-zoom", role: "group", "aria-label": "Zoom" });
  const button = (label, text, fn) => {
    const b = html("button", { type: "button", class: "btn btn-small", "aria-label": label }, text);
    b.addEventListener("click", fn);
    bar.appendChild(b);
  };
  button("Zoom out", "−", () => {
    scale = Math.max(0.1, scale / 1.25);
    apply();
  });
  button("Zoom in", "+", () => {
    scale = Math.min(3, scale * 1.25);
    apply();
  });
  button("Fit the graph in view", "Fit", () => {
    scale = Math.min(1, canvas.clientWidth / width, Math.max(canvas.clientHeight, 240) / height);
    apply();
  });
  button("100% (actual size)", "100%", () => {
    scale = 1;
    apply();
  });
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || e.target.closest(".node")) return;
    drag = { x: e.clientX, y: e.clientY, left: canvas.scrollLeft, top: canvas.scrollTop };
    canvas.setPointerCapture(e.pointerId);
    canvas.classList.add("panning");
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    canvas.scrollLeft = drag.left - (e.clientX - drag.x);
    canvas.scrollTop = drag.top - (e.clientY - drag.y);
  });
  const end = () => {
    drag = null;
    canvas.classList.remove("panning");
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return bar;
}

async function show(box, form, list) {
  const id = box.dataset.assetId;
  const direction = form.elements.direction.value;
  const depth = form.elements.depth.value;
  box.setAttribute("aria-busy", "true");
  let lineage;
  try {
    lineage = await api(
      "GET",
      `/assets/${encodeURIComponent(id)}/lineage?direction=${encodeURIComponent(direction)}&depth=${encodeURIComponent(depth)}`,
    );
  } catch (e) {
    box.replaceChildren(html("p", { class: "flash err", role: "alert" }, `The lineage graph could not be loaded: ${e.message}`));
    box.hidden = false;
    box.removeAttribute("aria-busy");
    return;
  }
  const { svg, colours } = draw(lineage, id);
  const width = Number(svg.getAttribute("width"));
  const height = Number(svg.getAttribute("height"));
  // A region of its own, reachable with Tab, so the keyboard can scroll it.
  const canvas = html("div", {
    class: "lineage-canvas",
    role: "region",
    "aria-label": "Lineage graph (scroll or drag to pan)",
    tabindex: "0",
  });
  canvas.appendChild(svg);
  const summary = html(
    "p",
    { class: "small muted lineage-summary" },
    `${lineage.nodes.length} ${lineage.nodes.length === 1 ? "asset" : "assets"}, ` +
      `${lineage.edges.length} ${lineage.edges.length === 1 ? "relationship" : "relationships"}` +
      (lineage.truncated ? " (more were reachable: choose a smaller depth)" : ""),
  );
  box.replaceChildren(controls(canvas, svg, width, height), summary, canvas, legend(colours, lineage));
  box.dataset.layoutMs = svg.dataset.layoutMs;
  box.dataset.nodes = String(lineage.nodes.length);
  box.hidden = false;
  box.removeAttribute("aria-busy");
  list.open = false;
  // Bring this asset into view.
  const current = svg.querySelector(".node.current");
  if (current) {
    const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(current.getAttribute("transform"));
    if (m) {
      canvas.scrollLeft = Number(m[1]) - canvas.clientWidth / 2 + NODE_W / 2;
      canvas.scrollTop = Number(m[2]) - canvas.clientHeight / 2 + NODE_H / 2;
    }
  }
  box.dispatchEvent(new CustomEvent("lineage:drawn", { bubbles: true }));
}

function init() {
  const box = document.getElementById("lineage-graph");
  const form = document.querySelector("form.lineage-controls");
  const list = document.querySelector("details.lineage-list");
  if (!box || !form || !list) return;
  // The selectors stay a plain GET form ("Show" reloads the page), so the
  // graph and the list always show the same walk and the URL keeps it.
  show(box, form, list);
}

// Imported outside a page (a unit test of `layout`), there is nothing to draw.
if (typeof document !== "undefined") init();
