// Element budgets, measured against a real hub in Chromium on this machine:
//   1. bytes a browser downloads for the element (raw, gzip, brotli);
//   2. script requested → first availability painted, median of 20 cold loads (and the same
//      from navigation start, which adds the page's own HTML);
//   3. till event sent → element DOM updated, over 200 events (p50/p99);
//   4. the second module (stores.js): its size as served, and script requested → a list of
//      the 3 nearest stores painted with their availability, median of 20 cold loads.
// Run: cd e2e && node bench/element.js   (after scripts/build-element.sh and a release build)
//      SHELFCAST_BIN=<other build> node bench/element.js   measures another build's element
//      LATENCY=50 node bench/element.js   adds 50 ms to every request (Chromium's network
//      emulation), as a shopper far from the hub would see it.
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { startHub, startPages, browser, postEvents, event, served, TOKEN } from "../tests/harness.js";

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)];
};

// A page that notes when the element first paints availability, and can time updates.
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="{{HUB}}/embed/shelfcast.js"></script></head><body>
<shelfcast-availability sku="BENCH" location="bench-store"></shelfcast-availability>
<script>
  const el = document.querySelector("shelfcast-availability");
  const text = () => el.shadowRoot?.textContent ?? "";
  (function poll() {
    if (text().includes("In stock")) window.firstPaint = performance.now();
    else requestAnimationFrame(poll);
  })();
  // Sends a sale as a till would and resolves when the element shows the new count.
  window.saleToDom = async (hub, token, id, expected) => {
    const seen = new Promise((resolve) => {
      const check = () => text().includes("In stock: " + expected) && (obs.disconnect(), resolve(performance.now()));
      const obs = new MutationObserver(check);
      obs.observe(el.shadowRoot, { subtree: true, childList: true, characterData: true });
    });
    const t0 = performance.now();
    const r = await fetch(hub + "/v1/events", { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer " + token },
      body: JSON.stringify([{ id, type: "sale", sku: "BENCH", location: "bench-store", qty: 1 }]) });
    const acked = performance.now();
    if (r.status !== 200) throw new Error("ingest " + r.status);
    const t1 = await seen;
    return { sent: t1 - t0, acked: t1 - acked };
  };
</script></body></html>`;

// Marks the moments between script and paint the resource timings do not show: the wasm
// instantiated, the stream requested, opened and its first event (wrappers, installed before
// any script of the page runs).
const TIMELINE = () => {
  const t = (window.timeline = {});
  const instantiate = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = async (...args) => {
    t.instantiateCalled ??= performance.now();
    const result = await instantiate(...args);
    t.instantiated ??= performance.now();
    return result;
  };
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      t.streamRequested ??= performance.now();
      this.addEventListener("open", () => (t.streamOpen ??= performance.now()));
      this.addEventListener("position", () => (t.firstEvent ??= performance.now()));
    }
  };
};
// The stream and the wasm load in parallel, so each is given as a moment since the script was
// requested (printed in the order of their medians).
const MILESTONES = [
  "shelfcast.js arrived",
  "wasm requested",
  "stream created (EventSource)",
  "wasm downloaded",
  "stream open",
  "first event received",
  "wasm instantiation started",
  "wasm instantiated",
  "first availability painted",
];

// The nearest stores: painted once every listed store shows its availability.
const NEAR_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="{{HUB}}/embed/shelfcast.js"></script></head><body>
<shelfcast-availability sku="BENCH" near="52.52,13.40" limit="3"></shelfcast-availability>
<script>
  const el = document.querySelector("shelfcast-availability");
  (function poll() {
    const inner = [...(el.shadowRoot?.querySelectorAll("shelfcast-availability") ?? [])];
    if (inner.length === 3 && inner.every((e) => e.shadowRoot?.textContent.includes("In stock"))) window.firstPaint = performance.now();
    else requestAnimationFrame(poll);
  })();
</script></body></html>`;
const STORES = [["bench-store", 52.52, 13.4], ["bench-2", 52.5, 13.3], ["bench-3", 53.55, 9.99]].map(([id, lat, lng]) => ({
  id, name: id, address: `${id} 1`, lat, lng, pickup: { enabled: true, ready_in_minutes: 60, sla: "same_day" }, timezone: "Europe/Berlin",
}));

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
const dir = mkdtempSync(join(tmpdir(), "shelfcast-bench-"));
writeFileSync(join(dir, "index.html"), PAGE);
writeFileSync(join(dir, "near.html"), NEAR_PAGE);
writeFileSync(join(dir, "stores.json"), JSON.stringify(STORES));
let hubUrl;
const pages = await startPages(dir, () => hubUrl);
const hub = await startHub({ origins: [pages.url], extra: ["--locations-file", join(dir, "stores.json")] });
hubUrl = hub.url;

await postEvents(hub, STORES.map((s) => event("receipt", "BENCH", s.id, 100000)));
const chromium = await browser();

try {
  // 1. Sizes: every file the page's browser fetched from /embed/ (read off one load), as the hub
  // serves it in each encoding (bytes on the wire, before the browser decodes them). The budget
  // is the gzip column; "gzip -9" is the same files through zlib's best level, for comparison.
  const embedded = await (async () => {
    const ctx = await chromium.newContext();
    const page = await ctx.newPage();
    await page.goto(pages.url + "/");
    await page.waitForFunction(() => window.firstPaint !== undefined, null, { timeout: 10_000 });
    const names = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
    await ctx.close();
    return names.filter((n) => n.startsWith(hubUrl + "/embed/")).map((n) => n.slice(hubUrl.length + "/embed/".length));
  })();
  const wire = async (path, encoding) => {
    const r = await served(hub, `/embed/${path}`, encoding);
    if (r.status !== 200 || r.encoding !== encoding) throw new Error(`/embed/${path}: ${r.status} ${r.encoding}`);
    return r.body;
  };
  const total = { raw: 0, gzip: 0, br: 0, gzip9: 0 };
  console.log("what the browser downloads for the element, as served:");
  console.log("file                                   raw      gzip    brotli   (gzip -9)");
  for (const f of embedded) {
    const raw = await wire(f, "identity");
    const row = { raw: raw.length, gzip: (await wire(f, "gzip")).length, br: (await wire(f, "br")).length, gzip9: gzipSync(raw, { level: 9 }).length };
    for (const k in total) total[k] += row[k];
    console.log(`${f.padEnd(34)} ${String(row.raw).padStart(8)} ${String(row.gzip).padStart(8)} ${String(row.br).padStart(8)}    ${String(row.gzip9).padStart(8)}`);
  }
  console.log(`${"total".padEnd(34)} ${String(total.raw).padStart(8)} ${String(total.gzip).padStart(8)} ${String(total.br).padStart(8)}    ${String(total.gzip9).padStart(8)}`);

  // 2. Cold loads: a new context each time, so nothing is cached.
  const loads = [];
  for (let i = 0; i < 20; i++) {
    const ctx = await chromium.newContext();
    const page = await ctx.newPage();
    await page.addInitScript(TIMELINE);
    if (process.env.LATENCY) {
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: Number(process.env.LATENCY), downloadThroughput: -1, uploadThroughput: -1 });
    }
    await page.goto(pages.url + "/");
    await page.waitForFunction(() => window.firstPaint !== undefined, null, { timeout: 10_000 });
    loads.push(await page.evaluate(() => {
      const entries = performance.getEntriesByType("resource");
      const script = entries.find((e) => e.name.endsWith("/embed/shelfcast.js"));
      const wasm = entries.find((e) => e.name.endsWith(".wasm"));
      const t = window.timeline;
      return {
        nav: window.firstPaint,
        script: window.firstPaint - script.startTime,
        milestones: [
          script.responseEnd,
          wasm.startTime,
          t.streamRequested,
          wasm.responseEnd,
          t.streamOpen,
          t.firstEvent,
          t.instantiateCalled,
          t.instantiated,
          window.firstPaint,
        ].map((at) => at - script.startTime),
      };
    }));
    await ctx.close();
    process.stderr.write(`\rcold load ${i + 1}/20`);
  }
  console.error();
  for (const [what, key] of [["script requested", "script"], ["navigation start", "nav"]]) {
    const xs = loads.map((l) => l[key]);
    console.log(`${what} → first availability painted, 20 cold loads: median ${pct(xs, 0.5).toFixed(1)} ms, min ${Math.min(...xs).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`);
  }
  console.log("where the time goes: median moment of each step since the script was requested, same loads:");
  MILESTONES.map((name, i) => [name, pct(loads.map((l) => l.milestones[i]), 0.5)])
    .sort(([, a], [, b]) => a - b)
    .forEach(([name, at]) => console.log(`  ${name.padEnd(34)} ${at.toFixed(1).padStart(6)} ms`));

  // 3. Till event → DOM.
  const ctx = await chromium.newContext();
  const page = await ctx.newPage();
  await page.goto(pages.url + "/");
  await page.waitForFunction(() => window.firstPaint !== undefined);
  let stock = 100000;
  const sent = [];
  const acked = [];
  for (let i = 0; i < 200; i++) {
    stock -= 1;
    const r = await page.evaluate(([h, t, id, exp]) => window.saleToDom(h, t, id, exp), [hub.url, TOKEN, `bench-${Date.now()}-${i}`, stock.toLocaleString("en")]);
    sent.push(r.sent);
    acked.push(r.acked);
    if (i % 20 === 19) process.stderr.write(`\rupdates ${i + 1}/200`);
  }
  console.error();
  console.log(`till event sent → DOM updated, 200 events: p50 ${pct(sent, 0.5).toFixed(1)} ms, p99 ${pct(sent, 0.99).toFixed(1)} ms (from the acknowledgement: p50 ${pct(acked, 0.5).toFixed(1)} ms, p99 ${pct(acked, 0.99).toFixed(1)} ms)`);
  await ctx.close();

  // 4. The second module, downloaded only by pages that use `near`, `skus` or location="auto".
  if ((await served(hub, "/embed/stores.js", "identity")).status !== 200) throw new Error("this build serves no stores.js");
  const second = { gzip: (await wire("stores.js", "gzip")).length, br: (await wire("stores.js", "br")).length };
  console.log(`stores.js as served: ${second.gzip} B gzip, ${second.br} B brotli; with the element: ${total.gzip + second.gzip} B gzip`);
  const near = [];
  for (let i = 0; i < 20; i++) {
    const c = await chromium.newContext();
    const page = await c.newPage();
    await page.goto(pages.url + "/near.html");
    await page.waitForFunction(() => window.firstPaint !== undefined, null, { timeout: 10_000 });
    near.push(await page.evaluate(() => window.firstPaint - performance.getEntriesByType("resource").find((e) => e.name.endsWith("/embed/shelfcast.js")).startTime));
    await c.close();
    process.stderr.write(`\rnearest stores, cold load ${i + 1}/20`);
  }
  console.error();
  console.log(`script requested → 3 nearest stores painted, 20 cold loads: median ${pct(near, 0.5).toFixed(1)} ms, min ${Math.min(...near).toFixed(1)} ms, max ${Math.max(...near).toFixed(1)} ms`);
} finally {
  await chromium.close();
  await hub.stop();
  await pages.close();
}
