import { createHash } from 'node:crypto';

// GET / of the admin endpoint: a page for the person on call who would rather
// look than read. It polls this node's /status, /metrics and /health once a
// second (with the token from the address's fragment, #token=..., which never
// leaves the browser except as that Authorization header) and shows
// the members as this node sees them, the leader highlighted, and two charts
// over the last five minutes. No build step and nothing fetched from elsewhere.
// Its health column says what it can know: for this node, what /health answers
// (a linearizable read within 2 s, not merely a leader known); for another
// member, whether the leader has heard from it lately, which only the leader's
// page can tell.
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>raftlog status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  .sub { color: #5b6478; margin-bottom: 1rem; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { padding: .4rem .8rem; text-align: left; border-bottom: 1px solid #e3e6ec; }
  th { background: #eef0f4; font-weight: 600; }
  tr.leader { background: #e6f4ea; font-weight: 600; }
  .ok { color: #137333; } .bad { color: #b3261e; font-weight: 600; }
  .charts { display: flex; gap: 1.5rem; margin-top: 1.2rem; flex-wrap: wrap; }
  .chart { background: #fff; box-shadow: 0 1px 2px #0002; padding: .6rem .8rem; }
  .chart b { display: block; margin-bottom: .3rem; }
  .note { color: #5b6478; margin-top: .4rem; font-size: 12px; }
  #error { color: #b3261e; margin-top: 1rem; }
  #removed { background: #fce8e6; color: #b3261e; border: 1px solid #b3261e; padding: .6rem .8rem; margin-bottom: 1rem; font-weight: 600; }
</style>
</head>
<body>
<h1>raftlog <span id="node"></span></h1>
<div class="sub" id="summary">loading...</div>
<div id="removed" hidden></div>
<table>
  <thead><tr><th>member</th><th>address</th><th>role</th><th>match</th><th>lag</th><th>health</th></tr></thead>
  <tbody id="members"></tbody>
</table>
<div class="note">health: this node's is its /health (a linearizable read within 2 s); another member's, whether the leader heard from it lately.</div>
<div class="charts">
  <div class="chart"><b>commits/s</b><svg id="commits" width="320" height="80"></svg><div id="commits-now"></div></div>
  <div class="chart"><b>append p99 (ms)</b><svg id="p99" width="320" height="80"></svg><div id="p99-now"></div></div>
</div>
<div id="error"></div>
<script>
"use strict";
const WINDOW = 300; // samples kept: five minutes at one a second
const commits = [], p99s = [];
let last = null;
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const opts = token ? { headers: { Authorization: "Bearer " + token } } : {};

function metric(text, name) {
  const out = [];
  for (const line of text.split("\\n")) {
    if (line.startsWith("#") || !line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\\{[^}]*\\})? ([^ ]+)/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] || "", value: Number(m[3]) });
  }
  return out;
}

// p99 of the appends finished since the previous sample, from the histogram's cumulative buckets.
function p99Since(prev, now) {
  const total = now.count - prev.count;
  if (total <= 0) return null;
  for (let i = 0; i < now.buckets.length; i++) {
    const [le, c] = now.buckets[i];
    if (c - (prev.buckets[i] ? prev.buckets[i][1] : 0) >= 0.99 * total) return le * 1000;
  }
  return null;
}

function spark(id, values) {
  const svg = document.getElementById(id);
  const w = 320, h = 80, pts = values.filter((v) => v !== null);
  const max = Math.max(1e-9, ...pts);
  const step = w / Math.max(1, WINDOW - 1);
  const off = WINDOW - values.length;
  let d = "";
  values.forEach((v, i) => { if (v !== null) d += (d ? "L" : "M") + ((off + i) * step).toFixed(1) + "," + (h - 4 - (v / max) * (h - 8)).toFixed(1); });
  svg.innerHTML = '<path d="' + d + '" fill="none" stroke="#1a73e8" stroke-width="1.5"/>';
}

function row(cells, cls) {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  for (const c of cells) {
    const td = document.createElement("td");
    if (typeof c === "object") { td.textContent = c.text; td.className = c.cls; if (c.title) td.title = c.title; } else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

// isRemoved and removalReason of src/admin/removal.ts: this script imports nothing, and a test
// holds each pair to the same answers.
function isRemoved(s) {
  if (s.removedBy !== undefined) return true;
  const conf = new Set([...s.conf.voters, ...(s.conf.votersOutgoing || []), ...s.conf.learners, ...(s.conf.learnersNext || [])]);
  return conf.size > 0 && !conf.has(s.id);
}

function removalReason(s) {
  if (s.removedBy !== undefined) return "node " + s.removedBy + " refuses it as removed";
  return "its configuration no longer holds it (voters " + s.conf.voters.join(", ") + ")";
}

// 503 is an answer too: the node says why it is not healthy.
function health() {
  return fetch("health", opts).then((r) => {
    if (r.status !== 200 && r.status !== 503) throw new Error("health " + r.status);
    return r.json();
  });
}

function healthCell(s, h, id, p) {
  if (id === s.id) return h.health === true ? { text: "healthy", cls: "ok" } : { text: String(h.reason || h.code), cls: "bad", title: String(h.message) };
  if (p) return p.recentActive ? { text: "reachable", cls: "ok" } : { text: "unreachable", cls: "bad" };
  return { text: id === s.lead ? "see its page" : "seen from the leader", cls: "" };
}

async function poll() {
  try {
    const [s, text, h] = await Promise.all([
      fetch("status", opts).then((r) => { if (!r.ok) throw new Error("status " + r.status); return r.json(); }),
      fetch("metrics", opts).then((r) => { if (!r.ok) throw new Error("metrics " + r.status); return r.text(); }),
      health(),
    ]);
    document.getElementById("node").textContent = "node " + s.id;
    const voters = new Set(s.conf.voters), learners = new Set(s.conf.learners);
    // A removed node still names the leader it last heard and the members it knew: the operator
    // must stop it or add it back, and nothing else on the page is the cluster's.
    const removed = isRemoved(s);
    document.getElementById("summary").textContent =
      "role " + (removed ? "removed" : s.role) + " · term " + s.term + " · leader " + (removed ? "unknown" : s.lead || "none") +
      " · commit " + s.commit + " · applied " + s.applied;
    const banner = document.getElementById("removed");
    banner.hidden = !removed;
    banner.textContent = removed
      ? "This node was removed from the cluster (" + removalReason(s) + ") and answers every read and write NOT_MEMBER. Stop it, or add it back: raftlog member add " + s.id + " " +
        (s.members[s.id] || "HOST:PORT") + " against a member. The members below are those it knew before."
      : "";
    const body = document.getElementById("members");
    body.textContent = "";
    const ids = Object.keys(s.members).map(Number).sort((a, b) => a - b);
    for (const id of ids) {
      const p = s.progress ? s.progress[id] : undefined;
      const role = removed ? (id === s.id ? "removed" : voters.has(id) ? "voter" : learners.has(id) ? "learner" : "leaving")
        : id === s.lead ? "leader" : learners.has(id) ? "learner" : voters.has(id) ? "follower" : "leaving";
      body.appendChild(row([
        String(id), s.members[id], role,
        p ? String(p.match) : "", p ? String(p.lag) : "",
        healthCell(s, h, id, p),
      ], id === s.lead && !removed ? "leader" : ""));
    }
    const commit = metric(text, "raftlog_commit_index")[0];
    const count = metric(text, "raftlog_append_duration_seconds_count")[0];
    const buckets = metric(text, "raftlog_append_duration_seconds_bucket")
      .map((b) => [Number((/le="([^"]+)"/.exec(b.labels) || [])[1]), b.value]).filter((b) => isFinite(b[0]));
    const now = { t: performance.now(), commit: commit ? commit.value : 0, count: count ? count.value : 0, buckets };
    if (last) {
      commits.push(Math.max(0, (now.commit - last.commit) / ((now.t - last.t) / 1000)));
      p99s.push(p99Since(last, now));
      if (commits.length > WINDOW) { commits.shift(); p99s.shift(); }
      spark("commits", commits); spark("p99", p99s);
      document.getElementById("commits-now").textContent = commits[commits.length - 1].toFixed(0) + " now";
      const p = p99s[p99s.length - 1];
      document.getElementById("p99-now").textContent = p === null ? "no appends" : p.toFixed(2) + " ms now";
    }
    last = now;
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "this node does not answer: " + e;
  }
}
// The next poll once this one is answered: /health may take its 2 s, and polls that
// overlapped drew their answers out of order.
(async function loop() {
  await poll();
  setTimeout(loop, 1000);
})();
</script>
</body>
</html>
`;

const inlineHash = (tag: string): string => {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(STATUS_PAGE_HTML);
  return `'sha256-${createHash('sha256').update(m![1]!).digest('base64')}'`;
};

/**
 * What GET / answers with the page. It shows what peers and the disk said (addresses, error
 * messages) and holds a token in its address: only its own script and style run, it fetches
 * from its own origin only, and no other site may frame it (to have it clicked unseen).
 */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${inlineHash('script')}`,
    `style-src ${inlineHash('style')}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
