// The element end to end: a real hub, the page on another origin, a real Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { startHub, startPages, browser, postEvents, event, availability, reserve, metric, stablePort, shadowText, pagesDir, served, until } from "./harness.js";

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

/** A hub stocked with `stock` at each location, the page server, and a fresh browser context. */
async function setup({ stock = { berlin: 5, hamburg: 2, munich: 0 }, port = 0, holdTtl, extra = [] } = {}) {
  let hubUrl;
  const pages = await startPages(pagesDir, () => hubUrl);
  let hub;
  try {
    hub = await startHub({ port, origins: [pages.url], holdTtl, extra });
  } catch (e) {
    // Nothing may stay open when a start fails, or the test file never ends.
    await pages.close();
    throw e;
  }
  hubUrl = hub.url;
  const evs = Object.entries(stock).filter(([, q]) => q > 0).map(([loc, q]) => event("receipt", "E2E-1", loc, q));
  evs.push(event("receipt", "E2E-2", "berlin", 9));
  await postEvents(hub, evs);
  const context = await chromium.newContext();
  const s = { hub, pages, context };
  // `s.hub`, not `hub`: a test may have replaced the hub with a restarted one.
  s.cleanup = async () => {
    await context.close();
    await s.hub.stop();
    await pages.close();
  };
  return s;
}

async function open(context, url) {
  const page = await context.newPage();
  const streams = [];
  page.on("request", (r) => {
    if (r.url().includes("/v1/stream")) streams.push(r);
  });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(url);
  return { page, streams };
}

const textIs = (page, sel, needle) => until(async () => (await shadowText(page, sel)).includes(needle), `${sel} to show "${needle}"`);

test("the element appears and a sale through the API shows without reload", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    await textIs(page, "#one", "Live");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 3)]);
    await textIs(page, "#one", "Only 2 left");
    const changes = await page.evaluate(() => window.shelfcastEvents.filter((e) => e.name === "change" && e.detail.location === "berlin" && e.detail.sku === "E2E-1"));
    assert.ok(changes.some((c) => c.detail.available === 2), "shelfcast:change carried the new position");
  } finally {
    await s.cleanup();
  }
});

test("a hub that discloses only the status: the page shows in, low and out of stock, and no count anywhere", async () => {
  const s = await setup({ extra: ["--disclose", "status"] });
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    const noDigits = async (state) => {
      const text = await shadowText(page, "#one");
      assert.ok(!/[0-9]/.test(text), `${state}: no count in "${text}"`);
    };
    await textIs(page, "#one", "In stock");
    await textIs(page, "#one", "Live");
    await noDigits("in stock");
    assert.ok(!/[0-9]/.test(await shadowText(page, "#list")), "nor in the store list");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 3)]);
    await textIs(page, "#one", "Low stock");
    await noDigits("low stock");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await textIs(page, "#one", "Out of stock");
    await noDigits("out of stock");
    const changes = await page.evaluate(() => window.shelfcastEvents.filter((e) => e.name === "change" && e.detail.location === "berlin" && e.detail.sku === "E2E-1"));
    assert.ok(changes.length >= 3, "a change event for each");
    assert.ok(changes.every((c) => c.detail.available === null && c.detail.on_hand === null), "with no count in their details");
  } finally {
    await s.cleanup();
  }
});

test("the script tag downloads one script and the wasm, 64 KB gzip at most", async () => {
  const s = await setup();
  try {
    const page = await s.context.newPage();
    const fetched = [];
    page.on("request", (r) => r.url().startsWith(`${s.hub.url}/embed/`) && fetched.push(r.url()));
    await page.goto(`${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    const paths = fetched.map((u) => u.slice(s.hub.url.length)).sort();
    assert.deepEqual(paths, ["/embed/dist/shelfcast_element_bg.wasm", "/embed/shelfcast.js"]);
    let gzip = 0;
    for (const path of paths) {
      const { status, encoding, body } = await served(s.hub, path, "gzip");
      assert.equal(status, 200, path);
      assert.equal(encoding, "gzip", path);
      assert.ok(gunzipSync(body).equals((await served(s.hub, path, "identity")).body), `${path}: the gzip carries the file`);
      gzip += body.length;
    }
    assert.ok(gzip <= 64_000, `the element's download is ${gzip} B gzip`);
  } finally {
    await s.cleanup();
  }
});

test("one stream per page, however many elements, and it closes with the last one", async () => {
  const s = await setup();
  try {
    const { page, streams } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#list", "Hamburg");
    await textIs(page, "#list", "Only 2 left");
    await textIs(page, "#list", "Out of stock");
    await textIs(page, "#other", "In stock: 9");
    assert.equal(streams.length, 1, `one stream request for three elements, got ${streams.map((r) => r.url())}`);
    const url = decodeURIComponent(streams[0].url());
    for (const p of ["E2E-1@berlin", "E2E-1@hamburg", "E2E-1@munich", "E2E-2@berlin"]) assert.ok(url.includes(p), url);
    assert.equal(await metric(s.hub, "shelfcast_open_streams"), 1);
    await page.evaluate(() => document.querySelectorAll("shelfcast-availability").forEach((e) => e.remove()));
    await until(async () => (await metric(s.hub, "shelfcast_open_streams")) === 0, "the stream to close");
  } finally {
    await s.cleanup();
  }
});

/** A page on which the wasm is held back until `release()`, with its stream requests counted. */
async function openHeld(context, url) {
  const page = await context.newPage();
  const streams = [];
  page.on("request", (r) => {
    if (r.url().includes("/v1/stream")) streams.push(r);
  });
  let release;
  const held = new Promise((r) => (release = r));
  await page.route("**/*.wasm", async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(url);
  return { page, streams, release };
}

test("the stream opens while the WebAssembly downloads, and the view takes it over", async () => {
  const s = await setup();
  try {
    // Any stream request made while the wasm is held came from the page's script alone.
    const { page, streams, release } = await openHeld(s.context, `${s.pages.url}/product.html`);
    await until(async () => streams.length === 1, "a stream request before the wasm arrives");
    assert.equal(await shadowText(page, "#other"), "", "no view before the wasm");
    // The hub's first events arrive now, into the page script's buffer.
    await until(async () => (await metric(s.hub, "shelfcast_open_streams")) === 1, "the stream to open");
    release();
    // Shown from the buffered events: the hub sends each position once, at the stream's start.
    await textIs(page, "#other", "In stock: 9");
    await textIs(page, "#list", "Out of stock");
    await textIs(page, "#one", "Live");
    assert.equal(streams.length, 1, `the view used the stream opened ahead, got ${streams.map((r) => r.url())}`);
    await postEvents(s.hub, [event("sale", "E2E-2", "berlin", 1)]);
    await textIs(page, "#other", "In stock: 8");
    assert.equal(await metric(s.hub, "shelfcast_open_streams"), 1);
  } finally {
    await s.cleanup();
  }
});

test("a stream opened ahead that the view does not want is closed", async () => {
  const s = await setup();
  try {
    const { page, streams, release } = await openHeld(s.context, `${s.pages.url}/product.html`);
    await until(async () => streams.length === 1, "a stream request before the wasm arrives");
    // An element the page's script did not see: the view's union is now a different stream.
    await page.evaluate(() => {
      const late = document.createElement("shelfcast-availability");
      late.id = "late";
      late.setAttribute("sku", "E2E-2");
      late.setAttribute("location", "hamburg");
      document.body.append(late);
    });
    release();
    await textIs(page, "#late", "Out of stock");
    await textIs(page, "#other", "In stock: 9");
    assert.equal(streams.length, 2, `one stream ahead, one for the view, got ${streams.map((r) => r.url())}`);
    assert.ok(decodeURIComponent(streams[1].url()).includes("E2E-2@hamburg"), streams[1].url());
    // Well before the 10 s after which the page script would close it itself.
    await until(async () => (await metric(s.hub, "shelfcast_open_streams")) === 1, "the unwanted stream to close", 4_000);
  } finally {
    await s.cleanup();
  }
});

test("changing sku or location re-subscribes", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    await page.evaluate(() => document.querySelector("#one").setAttribute("location", "hamburg"));
    await textIs(page, "#one", "Only 2 left");
    await postEvents(s.hub, [event("sale", "E2E-1", "hamburg", 2)]);
    await textIs(page, "#one", "Out of stock");
  } finally {
    await s.cleanup();
  }
});

test("reserve: the hold shows, a second shopper sees the count drop, reload keeps it, cancel frees it", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    const other = await open(await chromium.newContext(), `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    await textIs(other.page, "#one", "In stock: 5");
    await page.locator("#one").locator("button.reserve").click();
    await textIs(page, "#one", "Reserved for you: 1");
    await textIs(page, "#one", "In stock: 4");
    await textIs(other.page, "#one", "In stock: 4");
    const reserved = await page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "reserved"));
    assert.equal(reserved.detail.sku, "E2E-1");
    assert.equal((await availability(s.hub, "E2E-1", "berlin")).reserved, 1);

    await page.reload();
    await textIs(page, "#one", "Reserved for you: 1");
    await textIs(page, "#one", "In stock: 4");
    await until(async () => /\d+:\d\d left/.test(await shadowText(page, "#one")), "the countdown once the hub has said how long is left");

    await page.locator("#one").locator("button.cancel").click();
    await textIs(page, "#one", "Reserve for pickup");
    await until(async () => (await availability(s.hub, "E2E-1", "berlin")).reserved === 0, "the hub to release");
    await textIs(other.page, "#one", "In stock: 5");
    const released = await page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "released"));
    assert.equal(released.detail.reason, "cancelled");
    await other.page.context().close();
  } finally {
    await s.cleanup();
  }
});

test("a new locale or low-stock rewords a held reservation without asking the hub again", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    await page.locator("#one").locator("button.reserve").click();
    await textIs(page, "#one", "Reserved for you: 1");
    await textIs(page, "#one", "In stock: 4");
    const asked = [];
    page.on("request", (r) => r.url().startsWith(`${s.hub.url}/v1/`) && asked.push(`${r.method()} ${new URL(r.url()).pathname}`));
    await page.evaluate(() => {
      const one = document.querySelector("#one");
      one.setAttribute("locale", "de");
      one.setAttribute("low-stock", "4");
    });
    await textIs(page, "#one", "Für dich reserviert: 1");
    await textIs(page, "#one", "Nur noch 4 verfügbar");
    // Cancelling is the next request the page makes: nothing (a re-read of the stored hold, a
    // new stream) may come before it.
    // The element releases optimistically: the page says so before the hub has answered, so
    // the hub is read only once it has answered the DELETE.
    const released = page.waitForResponse((r) => r.request().method() === "DELETE" && r.url().startsWith(`${s.hub.url}/v1/reservations/`));
    await page.locator("#one").locator("button.cancel").click();
    await textIs(page, "#one", "Zur Abholung reservieren");
    assert.equal((await released).status(), 200);
    const id = (await page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "reserved"))).detail.id;
    assert.deepEqual(asked, [`DELETE /v1/reservations/${id}`]);
    assert.equal((await availability(s.hub, "E2E-1", "berlin")).reserved, 0);
  } finally {
    await s.cleanup();
  }
});

test("a reservation the hub refuses rolls back with the reason", async () => {
  const s = await setup({ stock: { berlin: 1 } });
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "Only 1 left");
    // Another shopper takes the last unit while this page's request is on its way.
    await page.route("**/v1/reservations", async (route) => {
      const taken = await reserve(s.hub, "E2E-1", "berlin");
      assert.equal(taken.status, 201);
      await route.continue();
    });
    await page.locator("#one").locator("button.reserve").click();
    await textIs(page, "#one", "Just sold out at Berlin.");
    await textIs(page, "#one", "Out of stock");
    const error = await page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "error"));
    assert.equal(error.detail.code, "insufficient_stock");
  } finally {
    await s.cleanup();
  }
});

test("keyboard only: tab to the button, press Enter, the hold shows", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    let focused = "";
    for (let i = 0; i < 10 && focused !== "reserve"; i++) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(() => document.activeElement?.shadowRoot?.activeElement?.className ?? "");
    }
    assert.equal(focused, "reserve", "the reserve button is reachable by Tab");
    await page.keyboard.press("Enter");
    await textIs(page, "#one", "Reserved for you: 1");
  } finally {
    await s.cleanup();
  }
});

test("the page's language picks the words", async () => {
  const s = await setup();
  try {
    const { page } = await open(s.context, `${s.pages.url}/german.html`);
    await textIs(page, "#one", "Auf Lager: 5");
    await textIs(page, "#one", "Zur Abholung reservieren");
  } finally {
    await s.cleanup();
  }
});

test("hub restart: reconnecting, then caught up through Last-Event-ID", async () => {
  const port = await stablePort();
  const s = await setup({ port });
  try {
    const { page, streams } = await open(s.context, `${s.pages.url}/product.html`);
    await textIs(page, "#one", "In stock: 5");
    await textIs(page, "#one", "Live");
    await s.hub.stop();
    await textIs(page, "#one", "Reconnecting");
    const row = await page.locator("#one").evaluate((el) => el.shadowRoot.querySelector(".row").className);
    assert.match(row, /stale/, "the last known value is marked stale");
    s.hub = await startHub({ port, data: s.hub.data, origins: [s.pages.url] });
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 4)]);
    await textIs(page, "#one", "Only 1 left");
    await textIs(page, "#one", "Live");
    const resumed = (await Promise.all(streams.slice(1).map((r) => r.allHeaders()))).map((h) => h["last-event-id"]);
    assert.ok(resumed.some((id) => Number(id) > 0), `the browser resumed with Last-Event-ID: ${resumed}`);
  } finally {
    await s.cleanup();
  }
});

// A shopper's device clock minutes off the hub's: what the element says about a hold follows the
// hub's clock (the hub's time left, counted down on the page's monotonic clock).
for (const [name, offset] of [["20 minutes behind", -20 * 60_000], ["20 minutes ahead of", 20 * 60_000]]) {
  test(`a shopper's clock ${name} the hub's: the countdown, a reload and the expiry follow the hub`, async () => {
    const s = await setup({ holdTtl: "8s" });
    try {
      await s.context.clock.install({ time: Date.now() + offset });
      const { page } = await open(s.context, `${s.pages.url}/product.html`);
      const skew = (await page.evaluate(() => Date.now())) - Date.now();
      assert.ok(Math.abs(skew - offset) < 5_000, `the page's clock is off by ${skew} ms`);
      await textIs(page, "#one", "In stock: 5");
      await page.locator("#one").locator("button.reserve").click();
      const left = async () => {
        const m = (await shadowText(page, "#one")).match(/(\d+):(\d\d) left/);
        return m ? Number(m[1]) * 60 + Number(m[2]) : null;
      };
      const reserved = await until(() => page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "reserved")), "the hold");
      const close = async (what) => {
        const shown = await until(left, `the countdown ${what}`);
        const hub = (reserved.detail.expires_at - Date.now()) / 1000;
        assert.ok(Math.abs(shown - hub) <= 2, `${what}: ${shown} s left shown, the hub has ${hub.toFixed(1)} s`);
        assert.ok(!(await shadowText(page, "#one")).includes("expired"), `${what}: no false expiry`);
      };
      await close("right after reserving");
      await page.reload();
      await close("after a reload");
      await until(async () => (await shadowText(page, "#one")).includes("Your reservation has expired."), "the hold to lapse on screen", 15_000);
      const late = Date.now() - reserved.detail.expires_at;
      assert.ok(late > -1000 && late <= 1000, `the hold left the screen ${late} ms after the hub's expiry`);
    } finally {
      await s.cleanup();
    }
  });
}
