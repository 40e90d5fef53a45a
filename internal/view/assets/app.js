// The node's view page: it listens to the server's snapshots (server-sent
// events on /events) and redraws what changed. Charts: uPlot. Graphs:
// Cytoscape.js.
"use strict";

const RING_RADIUS = 250;
const HISTORY = 120; // chart points kept: two minutes at one snapshot a second

const $ = (sel) => document.querySelector(sel);
const short = (id) => (id ? id.slice(0, 8) : "");
const bucketColour = (b) => `hsl(${(b * 47) % 360}, 65%, 45%)`;
const ringPos = (pos) => {
  const a = 2 * Math.PI * pos - Math.PI / 2; // ID 0 at the top, growing clockwise
  return { x: RING_RADIUS * Math.cos(a), y: RING_RADIUS * Math.sin(a) };
};
const fmtBytes = (n) => {
  if (n < 1024) return `${n.toFixed(0)} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
};
const fmtSecs = (s) => (s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`);

// The kinds of link, as the server names them, and what they mean.
const KINDS = ["direct", "punched", "relayed"];
const KIND_WORDS = {
  direct: "direct: to the peer's own address",
  punched: "punched: direct to the peer's NAT mapping (NAT traversal)",
  relayed: "relayed: through another node (a contact, a circuit or TURN)",
};
const linkKind = (c) => (KINDS.includes(c.kind) ? c.kind : c.relayed ? "relayed" : "direct");

// Fill the rows of table sel: one per item, keyed by key(item).
function fillTable(sel, items, key, cells, rowClass) {
  const body = $(sel + " tbody");
  const rows = items.map((it) => {
    const tr = document.createElement("tr");
    tr.dataset.id = key(it);
    if (rowClass) tr.className = rowClass(it);
    for (const c of cells(it)) {
      const td = document.createElement("td");
      if (typeof c === "object") {
        td.textContent = c.text;
        td.className = c.cls || "";
        if (c.title) td.title = c.title;
      } else {
        td.textContent = c;
      }
      tr.appendChild(td);
    }
    return tr;
  });
  body.replaceChildren(...rows);
}

// The ID ring: this node and its contacts, each at its ID.
const ring = cytoscape({
  container: $("#ring"),
  userZoomingEnabled: true,
  boxSelectionEnabled: false,
  autoungrabify: true,
  style: [
    { selector: "node.tick", style: { width: 2, height: 2, "background-color": "#cbd5e1", events: "no" } },
    { selector: "node.contact", style: { width: 16, height: 16, "background-color": "data(colour)", label: "data(label)",
      "font-size": 9, color: "#374151", "text-valign": "top", "text-margin-y": -2 } },
    { selector: "node.contact.suspect", style: { "background-color": "#9ca3af" } },
    { selector: "node.contact.public", style: { shape: "diamond", width: 20, height: 20 } },
    { selector: "node.self", style: { width: 26, height: 26, "background-color": "#f59e0b", "border-width": 3,
      "border-color": "#92400e", label: "this node", "font-size": 11, "font-weight": "bold", "text-valign": "bottom", "text-margin-y": 4 } },
    { selector: "edge", style: { width: 1.5, "line-color": "#2563eb", "curve-style": "straight", opacity: 0.55,
      label: "data(label)", "font-size": 8, color: "#1e3a8a", "text-rotation": "autorotate", "text-background-color": "#fff",
      "text-background-opacity": 0.7 } },
    { selector: "edge.punched", style: { "line-color": "#16a34a", opacity: 0.8, color: "#14532d", width: 2 } },
    { selector: "edge.relayed", style: { "line-color": "#db2777", "line-style": "dashed", opacity: 0.9, "target-arrow-shape": "triangle",
      "target-arrow-color": "#db2777", color: "#831843" } },
    { selector: "edge.suspect", style: { "line-color": "#9ca3af" } },
  ],
  layout: { name: "preset" },
});
{
  const ticks = [];
  for (let i = 0; i < 180; i++) ticks.push({ group: "nodes", data: { id: `tick${i}` }, classes: "tick", position: ringPos(i / 180) });
  ring.add(ticks);
}

let ringSize = -1;
function drawRing(s) {
  const me = s.node.id;
  if (ring.getElementById(me).empty()) {
    ring.add({ group: "nodes", data: { id: me }, classes: "self", position: ringPos(s.node.pos) });
  }
  const contacts = s.contacts || [];
  const want = new Set(contacts.map((c) => c.id));
  ring.nodes(".contact").forEach((n) => { if (!want.has(n.id())) n.remove(); });
  ring.batch(() => {
    // Every contact's node first: a relayed link is drawn from the contact
    // that relays it, which may come later in the list.
    for (const c of contacts) {
      let n = ring.getElementById(c.id);
      if (n.empty()) {
        n = ring.add({ group: "nodes", data: { id: c.id }, classes: "contact", position: ringPos(c.pos) });
      }
      n.data({ colour: bucketColour(c.bucket), label: short(c.id) });
      n.toggleClass("suspect", c.suspect);
      n.toggleClass("public", c.public);
    }
    for (const c of contacts) {
      const kind = linkKind(c);
      const from = kind === "relayed" && want.has(c.via) ? c.via : me;
      const eid = `link:${c.id}`;
      let e = ring.getElementById(eid);
      if (!e.empty() && e.data("source") !== from) { e.remove(); e = ring.collection(); }
      if (e.empty()) e = ring.add({ group: "edges", data: { id: eid, source: from, target: c.id } });
      e.data("label", c.rtt ? `${c.rtt.toFixed(1)} ms` : "");
      for (const k of KINDS) e.toggleClass(k, k === kind);
      e.toggleClass("suspect", c.suspect);
    }
  });
  if (contacts.length !== ringSize) {
    ringSize = contacts.length;
    ring.fit(undefined, 30);
  }
}

// The group trees: for each, parent -> this node -> children.
const trees = cytoscape({
  container: $("#groups-graph"),
  maxZoom: 1.2,
  autoungrabify: true,
  style: [
    { selector: "node", style: { width: 12, height: 12, "background-color": "#2563eb", label: "data(label)", "font-size": 9 } },
    { selector: "node.me", style: { "background-color": "#f59e0b", width: 16, height: 16 } },
    { selector: "node.root", style: { shape: "star", width: 18, height: 18 } },
    { selector: "edge", style: { width: 1.5, "line-color": "#94a3b8", "target-arrow-shape": "triangle", "target-arrow-color": "#94a3b8", "curve-style": "bezier" } },
  ],
});
let treesSig = "";
function drawTrees(s) {
  const groups = s.groups || [];
  const sig = JSON.stringify(groups.map((g) => [g.key, g.root, g.parent, g.children]));
  if (sig === treesSig) return;
  treesSig = sig;
  const els = [];
  for (const g of groups) {
    const k = short(g.key);
    const me = `${g.key}:me`;
    els.push({ data: { id: me, label: `${g.root ? "root " : ""}this node · group ${k}` }, classes: g.root ? "me root" : "me" });
    if (g.parent) {
      els.push({ data: { id: `${g.key}:${g.parent}`, label: `parent ${short(g.parent)}` } });
      els.push({ data: { source: `${g.key}:${g.parent}`, target: me } });
    }
    for (const c of g.children) {
      els.push({ data: { id: `${g.key}:${c}`, label: short(c) } });
      els.push({ data: { source: me, target: `${g.key}:${c}` } });
    }
  }
  trees.elements().remove();
  trees.add(els);
  trees.layout({ name: "breadthfirst", directed: true, spacingFactor: 0.9, padding: 10 }).run();
}

// The charts: rates from the counters' differences, and gauges.
const charts = [
  { title: "overlay packets / s", series: [["in", "packetsIn", "#2563eb"], ["out", "packetsOut", "#f59e0b"]], rate: true },
  { title: "overlay bytes / s", series: [["in", "bytesIn", "#2563eb"], ["out", "bytesOut", "#f59e0b"]], rate: true },
  { title: "messages / s", series: [["sent", "sent", "#16a34a"], ["received", "received", "#2563eb"], ["forwarded", "forwarded", "#9333ea"]], rate: true },
  { title: "drops and retransmits / s", series: [["dropped", "dropped", "#dc2626"], ["retransmits", "retransmits", "#f59e0b"]], rate: true },
  { title: "contacts", series: [["all", "contacts", "#2563eb"], ["punched", "punchedContacts", "#16a34a"], ["relayed", "relayedContacts", "#db2777"]] },
  { title: "connections", series: [["all", "conns", "#2563eb"], ["punched", "punchedConns", "#16a34a"], ["relayed", "relayedConns", "#db2777"]] },
];
const times = [];
for (const c of charts) {
  c.data = c.series.map(() => []);
  const div = document.createElement("div");
  div.className = "chart";
  const h = document.createElement("h3");
  h.append(c.title + ": ");
  for (const [label, , colour] of c.series) {
    const k = document.createElement("span");
    k.className = "key";
    k.style.color = colour;
    k.textContent = `■ ${label} `;
    h.appendChild(k);
  }
  div.appendChild(h);
  $("#charts").appendChild(div);
  c.plot = new uPlot({
    width: 300, height: 110, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: true } },
    axes: [{ size: 22, font: "10px sans-serif", space: 60, values: (u, ts) => ts.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false })) },
      { size: 44, font: "10px sans-serif" }],
    series: [{}].concat(c.series.map(([label, , colour]) => ({ label, stroke: colour, width: 1.5 }))),
  }, [[]].concat(c.data), div);
}
function resizeCharts() {
  const w = Math.max(200, Math.floor(($("#charts").clientWidth - 12) / 2));
  for (const c of charts) c.plot.setSize({ width: w, height: 110 });
}
window.addEventListener("resize", resizeCharts);
resizeCharts();

let last = null;
function drawCharts(s) {
  const t = s.time / 1000;
  if (last && t > last.time / 1000) {
    const dt = t - last.time / 1000;
    times.push(t);
    for (const c of charts) {
      c.series.forEach(([, key], i) => {
        const v = s.counters[key];
        c.data[i].push(c.rate ? Math.max(0, (v - last.counters[key]) / dt) : v);
      });
    }
    if (times.length > HISTORY) {
      times.shift();
      for (const c of charts) c.data.forEach((d) => d.shift());
    }
    for (const c of charts) c.plot.setData([times].concat(c.data));
  }
}

let lastConns = new Map();
function drawTables(s) {
  const contacts = s.contacts || [];
  fillTable("#contacts", contacts, (c) => c.id, (c) => [
    c.bucket,
    { text: c.id, title: c.id },
    linkKind(c) === "relayed" ? { text: `relayed via ${short(c.via)}`, cls: "relayed", title: c.via }
      : { text: `${linkKind(c)} ${c.addr}`, cls: linkKind(c), title: KIND_WORDS[linkKind(c)] },
    c.rtt ? `${c.rtt.toFixed(2)} ms` : "–",
    c.public ? "yes" : "no",
    { text: `${c.seen.toFixed(1)} s ago`, cls: c.suspect ? "suspect" : "" },
  ]);
  const buckets = new Map();
  for (const c of contacts) buckets.set(c.bucket, (buckets.get(c.bucket) || 0) + 1);
  const most = Math.max(1, ...buckets.values());
  $("#buckets").replaceChildren(...[...buckets.keys()].sort((a, b) => a - b).map((b) => {
    const d = document.createElement("div");
    d.className = "bucket";
    d.style.height = `${8 + (40 * buckets.get(b)) / most}px`;
    d.style.background = bucketColour(b);
    d.textContent = buckets.get(b);
    d.title = `bucket ${b}: ${buckets.get(b)} contacts`;
    const l = document.createElement("span");
    l.textContent = b;
    d.appendChild(l);
    return d;
  }));
  $("#bucket-count").textContent = buckets.size;

  const conns = s.conns || [];
  const now = new Map();
  fillTable("#conns", conns, (c) => c.peer, (c) => {
    now.set(c.peer, c);
    const prev = lastConns.get(c.peer);
    let rate = "–";
    if (prev && last && s.time > last.time) {
      const dt = (s.time - last.time) / 1000;
      rate = `${fmtBytes((c.sent - prev.sent) / dt)}/s / ${fmtBytes((c.received - prev.received) / dt)}/s`;
    }
    return [
      { text: short(c.peer), title: c.peer },
      { text: linkKind(c), cls: linkKind(c), title: KIND_WORDS[linkKind(c)] },
      c.local, c.remote, `${c.rtt.toFixed(2)} ms`, c.streams, rate, `${fmtBytes(c.sent)} / ${fmtBytes(c.received)}`, fmtSecs(c.age),
    ];
  });
  lastConns = now;

  fillTable("#groups", s.groups || [], (g) => g.key, (g) => [
    { text: short(g.key), title: g.key },
    g.root ? "root" : g.parent ? "attached" : "detached",
    { text: short(g.parent) || "–", title: g.parent },
    g.children.map(short).join(" ") || "–",
    g.members,
  ]);

  const d = s.dht;
  $("#dht-summary").textContent = d ? `${d.total} live values held, ${fmtBytes(d.bytes)}${d.total > d.records.length ? ` (the first ${d.records.length} listed)` : ""}` : "this node runs no DHT";
  fillTable("#dht", d ? d.records : [], (r) => `${r.key}/${r.owner}/${r.expires}`, (r) => [
    { text: r.key, title: r.key }, { text: short(r.owner), title: r.owner }, fmtBytes(r.size), fmtSecs(r.expires),
  ]);
}

function draw(s) {
  $("#node-id").textContent = s.node.id;
  $("#network").textContent = s.node.network;
  $("#local").textContent = s.node.local;
  $("#observed").textContent = s.node.observed || "–";
  $("#nat").textContent = s.node.nat;
  $("#contact-count").textContent = (s.contacts || []).length;
  $("#relayed-count").textContent = s.counters.relayedContacts;
  $("#punched-count").textContent = s.counters.punchedContacts || 0;
  $("#conn-count").textContent = `${s.counters.conns} (${s.counters.punchedConns || 0} punched, ${s.counters.relayedConns} relayed)`;
  drawRing(s);
  drawTrees(s);
  drawCharts(s);
  drawTables(s);
  last = s;
  window.p2pview.snapshots++;
}

window.p2pview = { ring, trees, snapshots: 0 };
const events = new EventSource("events");
events.addEventListener("snapshot", (e) => {
  $("#status").textContent = "live";
  $("#status").className = "status live";
  draw(JSON.parse(e.data));
});
events.onerror = () => {
  $("#status").textContent = "disconnected, retrying";
  $("#status").className = "status down";
};
