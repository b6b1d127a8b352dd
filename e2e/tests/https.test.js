// The element from a hub that serves HTTPS itself: the browser speaks HTTP/2 to it, so one
// shopper's many product tabs each hold a stream (over HTTP/1.1 a browser opens at most six
// connections to one origin, and the seventh tab's element would wait).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, startPages, browser, postEvents, event, shadowText, pagesDir, certificate, until } from "./harness.js";

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

test("over HTTPS the stream runs on HTTP/2, and ten tabs of one product all go live", async () => {
  let hubUrl;
  const pages = await startPages(pagesDir, () => hubUrl);
  const hub = await startHub({ origins: [pages.url], tls: certificate() });
  hubUrl = hub.url;
  assert.match(hub.url, /^https:\/\/127\.0\.0\.1:/);
  await postEvents(hub, [event("receipt", "E2E-1", "berlin", 50), event("receipt", "E2E-2", "berlin", 9)]);
  // The test's certificate is self-signed: this browser context alone accepts it.
  const context = await chromium.newContext({ ignoreHTTPSErrors: true });
  try {
    const tabs = [];
    for (let i = 0; i < 10; i++) {
      const page = await context.newPage();
      // What the browser reports for each response: the protocol it spoke.
      const cdp = await context.newCDPSession(page);
      const protocols = new Map();
      cdp.on("Network.responseReceived", (e) => protocols.set(new URL(e.response.url).pathname, e.response.protocol));
      await cdp.send("Network.enable");
      page.on("pageerror", (e) => console.error("page error:", e.message));
      await page.goto(`${pages.url}/product.html`);
      tabs.push({ page, protocols });
    }
    for (const [i, { page }] of tabs.entries()) {
      await until(async () => {
        const text = await shadowText(page, "#one");
        return text.includes("In stock: 50") && text.includes("Live");
      }, `tab ${i + 1} to go live`, 15_000);
    }
    for (const { protocols } of tabs) {
      assert.equal(protocols.get("/v1/stream"), "h2", "the stream runs over HTTP/2");
    }
    assert.equal(tabs[0].protocols.get("/embed/shelfcast.js"), "h2", "so does the element's script");

    await postEvents(hub, [event("sale", "E2E-1", "berlin", 48)]);
    for (const [i, { page }] of tabs.entries()) {
      await until(async () => (await shadowText(page, "#one")).includes("Only 2 left"), `tab ${i + 1} to show the sale`, 15_000);
    }
  } finally {
    await context.close();
    await hub.stop();
    await pages.close();
  }
});
