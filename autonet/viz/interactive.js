// The interactive page of an autonet graph (autonet/viz/interactive.py), inlined into it.
// Plain JavaScript, no framework, no network. The SVG is Graphviz's: each node is a <g
// class="node"> whose <title> is its name in the DOT source (t3 a tensor, op3 the op that made
// t3, rest the folded part of a large graph), each edge a <g class="edge"> titled "t2->op3", each
// module a <g class="cluster">. The JSON (#autonet-data) holds the tensors by node name and the
// backward steps.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("autonet-data").textContent);
  const svg = document.querySelector("#graph svg");
  const tooltip = document.getElementById("tooltip");
  const titleOf = (g) => g.querySelector("title").textContent.trim();
  const nodes = new Map(); // node name -> <g>
  for (const g of svg.querySelectorAll("g.node")) nodes.set(titleOf(g), g);
  const edges = new Map(); // "t2->op3" -> <g>
  for (const g of svg.querySelectorAll("g.edge")) edges.set(titleOf(g), g);

  // t3 and op3 both show tensor t3 (op3's output).
  const tensorOf = (name) => data.nodes[name.replace(/^op/, "t")];
  // A tensor may be left out of the drawing: beyond draw's max_nodes (then its edges come from
  // the node "rest"), or inside a module that draw collapsed into one node (expand=False).
  const drawn = (name) => nodes.get(name) || null;
  // What to call a tensor: its name, else what made it.
  function label(name) {
    const t = tensorOf(name);
    if (!t) return name === "rest" ? "the rest of the graph (not drawn)" : name;
    return t.name || (t.op ? `the output of ${t.op}` : `an unnamed ${t.kind}`);
  }

  function element(tag, attributes, ...children) {
    const e = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) e.setAttribute(key, value);
    for (const child of children) e.append(child);
    return e;
  }

  // ----------------------------------------------------------------------------------------
  // Arrays: NumPy-like text, statistics and a histogram.

  function formatNumber(x) {
    if (typeof x === "boolean") return x ? "True" : "False";
    const n = Number(x); // "NaN", "Infinity", "-Infinity" come as strings
    if (!Number.isFinite(n)) return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
    if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
    const text = n.toPrecision(6);
    return text.includes("e") ? text : String(Number(text));
  }

  function formatArray(values, shape) {
    if (shape.length === 0) return formatNumber(values);
    const leaves = [];
    const collect = (v) => (Array.isArray(v) ? v.forEach(collect) : leaves.push(formatNumber(v)));
    collect(values);
    const width = Math.max(0, ...leaves.map((s) => s.length));
    let next = 0;
    const write = (v, depth) => {
      if (depth === shape.length - 1) {
        return "[" + v.map(() => leaves[next++].padStart(width)).join(" ") + "]";
      }
      const separator = "\n".repeat(shape.length - depth - 1) + " ".repeat(depth + 1);
      return "[" + v.map((row) => write(row, depth + 1)).join(separator) + "]";
    };
    return write(values, 0);
  }

  function histogramPicture(array) {
    const counts = array.histogram;
    const width = 200, height = 40, bar = width / counts.length, top = Math.max(...counts);
    const step = (array.max - array.min) / counts.length;
    let bars = "";
    counts.forEach((count, i) => {
      const h = top ? Math.max(count ? 1 : 0, (height * count) / top) : 0;
      const low = formatNumber(array.min + i * step), high = formatNumber(array.min + (i + 1) * step);
      bars +=
        `<rect x="${i * bar + 0.5}" y="${height - h}" width="${bar - 1}" height="${h}">` +
        `<title>${count} in [${low}, ${high}]</title></rect>`;
    });
    const picture = element("div", { class: "histogram-box" });
    // innerHTML of a div parses <svg> into the SVG namespace (no namespace URL needed)
    picture.innerHTML =
      `<svg class="histogram" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}">${bars}</svg>`;
    picture.append(
      element("div", { class: "meta" }, `histogram of ${counts.length} bins, ` +
        `${formatNumber(array.min)} to ${formatNumber(array.max)}`)
    );
    return picture;
  }

  // One array (a value or a gradient) as a block: heading, statistics, histogram, elements.
  function arrayBlock(heading, array, shape) {
    const block = element("div", { class: "array" }, element("strong", {}, heading));
    if (array === null || array === undefined) {
      block.append(element("div", { class: "meta" }, " none (backward has not reached it)"));
      return block;
    }
    const stats = [`${array.size} element${array.size === 1 ? "" : "s"}`];
    if (array.min !== undefined) {
      for (const key of ["min", "max", "mean", "norm"]) stats.push(`${key} ${formatNumber(array[key])}`);
    }
    if (array.nonfinite) stats.push(`${array.nonfinite} NaN or inf`);
    block.append(element("div", { class: "stats" }, stats.join(", ")));
    if (array.histogram) block.append(histogramPicture(array));
    if (array.values !== undefined) {
      block.append(element("pre", { class: "values" }, formatArray(array.values, shape)));
    } else {
      block.append(
        element("div", { class: "summarised" },
          `${array.size} elements: more than ${data.limit.toLocaleString("en")}, so ` +
          "summarised here (statistics and histogram only)")
      );
    }
    return block;
  }

  // ----------------------------------------------------------------------------------------
  // Hover: a box with the node's tensor; a click pins it.

  let pinned = null;

  function describe(name) {
    const t = tensorOf(name);
    const box = element("div", { class: "describe", "data-node": name });
    if (!t) {
      box.append(element("h3", {}, label(name)));
      return box;
    }
    const kind = name.startsWith("op") ? `op ${t.op}, making ${label(name)}` : t.kind;
    box.append(element("h3", { class: "name" }, label(name)));
    const params = Object.entries(t.params).map(([k, v]) => `${k}=${v}`).join(", ");
    box.append(
      element("div", { class: "meta" },
        `${kind}; op: ${t.op || "none (a leaf)"}${params ? " (" + params + ")" : ""}; ` +
        `shape ${t.shape.length ? "(" + t.shape.join(", ") + (t.shape.length === 1 ? ",)" : ")") : "() scalar"}; ` +
        `dtype ${t.dtype}`)
    );
    box.append(arrayBlock("value", t.value, t.shape));
    box.append(arrayBlock(`gradient dL/d(${t.name || "this tensor"})`, t.grad, t.shape));
    return box;
  }

  function showTooltip(name, x, y) {
    tooltip.replaceChildren(describe(name));
    if (pinned) {
      const close = element("button", { class: "close", type: "button", title: "unpin" }, "\u00d7");
      close.addEventListener("click", unpin);
      tooltip.prepend(close);
    }
    tooltip.classList.toggle("pinned", Boolean(pinned));
    tooltip.hidden = false;
    const margin = 12, w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    const left = x + margin + w > window.innerWidth ? Math.max(0, x - margin - w) : x + margin;
    const top = y + margin + h > window.innerHeight ? Math.max(0, window.innerHeight - h) : y + margin;
    tooltip.style.left = left + "px";
    tooltip.style.top = top + "px";
  }

  function unpin() {
    pinned = null;
    tooltip.hidden = true;
    tooltip.classList.remove("pinned");
  }

  for (const [name, g] of nodes) {
    g.addEventListener("mouseenter", (event) => {
      if (!pinned) showTooltip(name, event.clientX, event.clientY);
    });
    g.addEventListener("mouseleave", () => {
      if (!pinned) tooltip.hidden = true;
    });
    g.addEventListener("click", (event) => {
      pinned = pinned === name ? null : name;
      if (pinned) showTooltip(name, event.clientX, event.clientY);
      else unpin();
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") unpin();
  });

  // ----------------------------------------------------------------------------------------
  // Modules: a click on a cluster hides its nodes (those whose box lies inside the cluster's:
  // Graphviz keeps other nodes out of it) and the edges between them, behind a summary line.

  function inside(inner, outer) {
    const x = inner.x + inner.width / 2, y = inner.y + inner.height / 2;
    return x >= outer.x && x <= outer.x + outer.width && y >= outer.y && y <= outer.y + outer.height;
  }

  const clusters = [];
  for (const g of svg.querySelectorAll("g.cluster")) {
    const box = g.getBBox();
    const members = [...nodes].filter(([, n]) => inside(n.getBBox(), box)).map(([name]) => name);
    const memberSet = new Set(members);
    const innerEdges = [...edges].filter(([key]) => {
      const [from, to] = key.split("->");
      return memberSet.has(from) && memberSet.has(to);
    }).map(([, e]) => e);
    const labelText = [...g.querySelectorAll("text")].map((t) => t.textContent).join(" ").trim();
    const summary = document.createElementNS(svg.namespaceURI, "text");
    summary.setAttribute("class", "collapse-summary");
    summary.setAttribute("x", box.x + box.width / 2);
    summary.setAttribute("y", box.y + box.height / 2);
    summary.setAttribute("text-anchor", "middle");
    const tensors = members.filter((m) => m.startsWith("t")).length;
    summary.textContent =
      `${labelText}: ${tensors} tensor${tensors === 1 ? "" : "s"} and ` +
      `${members.length - tensors} op${members.length - tensors === 1 ? "" : "s"} hidden (click to show)`;
    summary.style.display = "none";
    g.append(summary);
    const cluster = { g, label: labelText, members, memberSet, innerEdges, summary };
    clusters.push(cluster);
    g.addEventListener("click", () => setCollapsed(cluster, !g.classList.contains("collapsed")));
  }

  function setCollapsed(cluster, collapsed) {
    cluster.g.classList.toggle("collapsed", collapsed);
    cluster.g.dataset.collapsed = String(collapsed);
    for (const name of cluster.members) nodes.get(name).classList.toggle("hidden-by-cluster", collapsed);
    for (const e of cluster.innerEdges) e.classList.toggle("hidden-by-cluster", collapsed);
    cluster.summary.style.display = collapsed ? "" : "none";
  }

  // ----------------------------------------------------------------------------------------
  // The backward pass, step by step: `done` steps have run; the last one is highlighted.

  const steps = data.steps;
  const slider = document.getElementById("step-slider");
  const stepLabel = document.getElementById("step-label");
  const stepPanel = document.getElementById("step-panel");
  const playButton = document.getElementById("step-play");
  let done = 0;
  let timer = null;
  const marked = []; // [element, class] to clear at the next step

  function mark(e, cls) {
    if (!e) return;
    e.classList.add(cls);
    marked.push([e, cls]);
  }

  function clusterHolding(name) {
    return clusters.find((c) => c.memberSet.has(name) && c.g.classList.contains("collapsed"));
  }

  function showStep(count) {
    done = Math.max(0, Math.min(steps.length, count));
    slider.value = done;
    for (const [e, cls] of marked.splice(0)) e.classList.remove(cls);
    for (const step of steps.slice(0, done - 1)) mark(drawn(step.node), "step-done");
    if (done === 0) {
      stepLabel.textContent = `step 0 of ${steps.length}`;
      stepLabel.dataset.node = "";
      stepPanel.replaceChildren();
      return;
    }
    const step = steps[done - 1];
    const t = data.nodes[step.node];
    const op = "op" + step.node.slice(1);
    mark(drawn(step.node), "step-node");
    mark(drawn(op), "step-op");
    mark(edges.get(`${op}->${step.node}`), "step-edge");
    for (const send of step.sends) {
      mark(edges.get(`${send.to}->${op}`) || edges.get(`rest->${op}`), "step-edge");
    }
    for (const name of [step.node, op]) {
      const c = clusterHolding(name);
      if (c) mark(c.g, "step-cluster");
    }
    const what = t.op ? `the rule of ${t.op} runs at ${label(step.node)}` : `${label(step.node)} (a leaf) keeps its gradient in .grad`;
    const absent = drawn(step.node) ? "" : " (not drawn)";
    stepLabel.textContent = `step ${done} of ${steps.length}: ${what}${absent}`;
    stepLabel.dataset.node = step.node;
    const panel = [arrayBlock(`dL/d(${label(step.node)}), complete at this step`, t.grad, t.shape)];
    for (const send of step.sends) {
      const to = data.nodes[send.to];
      panel.push(arrayBlock(`sends to ${label(send.to)} (input ${send.position} of ${t.op})`, send.grad, to.shape));
    }
    stepPanel.replaceChildren(...panel);
    const target = drawn(step.node);
    if (target) target.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function stopPlaying() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    playButton.textContent = "\u25b6 play";
  }

  document.getElementById("step-prev").addEventListener("click", () => {
    stopPlaying();
    showStep(done - 1);
  });
  document.getElementById("step-next").addEventListener("click", () => {
    stopPlaying();
    showStep(done + 1);
  });
  slider.addEventListener("input", () => {
    stopPlaying();
    showStep(Number(slider.value));
  });
  playButton.addEventListener("click", () => {
    if (timer !== null) return stopPlaying();
    if (done >= steps.length) showStep(0);
    playButton.textContent = "\u275a\u275a pause";
    showStep(done + 1);
    timer = setInterval(() => (done >= steps.length ? stopPlaying() : showStep(done + 1)), 600);
  });

  // ----------------------------------------------------------------------------------------
  // Search: nodes whose name (else op) contains the text; Enter goes to the next match.

  const search = document.getElementById("search");
  const searchResult = document.getElementById("search-result");
  let matches = [];
  let current = -1;

  function findMatches(text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const named = [], byOp = [];
    for (const [name, t] of Object.entries(data.nodes)) {
      if (!nodes.has(name)) continue;
      if (t.name && t.name.toLowerCase() === q) named.unshift(name);
      else if (t.name && t.name.toLowerCase().includes(q)) named.push(name);
      else if (t.op && t.op.toLowerCase().includes(q) && nodes.has("op" + name.slice(1))) byOp.push("op" + name.slice(1));
    }
    return named.concat(byOp);
  }

  function goTo(index) {
    for (const g of svg.querySelectorAll("g.node.found")) g.classList.remove("found");
    current = index;
    if (!matches.length) {
      searchResult.textContent = search.value.trim() ? "no node found" : "";
      searchResult.dataset.node = "";
      return;
    }
    const name = matches[current];
    const c = clusterHolding(name);
    if (c) setCollapsed(c, false);
    const g = nodes.get(name);
    g.classList.add("found");
    g.scrollIntoView({ block: "center", inline: "center" });
    searchResult.textContent = `${current + 1} of ${matches.length}: ${label(name)}`;
    searchResult.dataset.node = name;
  }

  search.addEventListener("input", () => {
    matches = findMatches(search.value);
    goTo(0);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && matches.length) goTo((current + 1) % matches.length);
  });
})();
