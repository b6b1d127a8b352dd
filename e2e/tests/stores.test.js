// The nearest stores, the shopper's own store and the size grid (the element's second module,
// pkg/stores.js) end to end: a real hub with a store directory, the page on another origin, a
// real Chromium with its geolocation granted or denied.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startHub, startPages, browser, postEvents, event, hubFetch, metric, pagesDir, until, scratch } from "./harness.js";

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

const STORES = [
  { id: "berlin", name: "Berlin Mitte", lat: 52.5265, lng: 13.4019, ready: 60, sla: "same_day" },
  { id: "hamburg", name: "Hamburg Altona", lat: 53.5526, lng: 9.9322, ready: 120, sla: "same_day" },
  { id: "munich", name: "München Zentrum", lat: 48.1374, lng: 11.5755, ready: 1440, sla: "next_day" },
].map(({ id, name, lat, lng, ready, sla }) => ({
  id,
  name,
  address: `${name} 1`,
  lat,
  lng,
  pickup: { enabled: true, ready_in_minutes: ready, sla },
  timezone: "Europe/Berlin",
}));

// Near Hamburg: Hamburg ~4 km, Berlin ~255 km, Munich ~612 km.
const HAMBURG = { latitude: 53.55, longitude: 9.99 };

// A shop's strict policy with Trusted Types (as in csp.test.js). `img-src data:` lets the test
// page's own `data:` favicon load: Chromium fetches it at no fixed moment, and its violation
// would be the page's, not the element's.
const STRICT = (hub) =>
  `default-src 'none'; script-src 'self' ${hub} 'wasm-unsafe-eval'; connect-src ${hub}; style-src 'self'; img-src 'self' data:; require-trusted-types-for 'script'`;

async function setup({ geolocation, strict = false } = {}) {
  const dir = scratch("shelfcast-stores-");
  const file = join(dir, "stores.json");
  writeFileSync(file, JSON.stringify(STORES));
  let hubUrl;
  const pages = await startPages(pagesDir, () => hubUrl, (hub) => (strict ? { "content-security-policy": STRICT(hub) } : {}));
  let hub;
  try {
    hub = await startHub({ origins: [pages.url], extra: ["--locations-file", file] });
  } catch (e) {
    await pages.close();
    throw e;
  }
  hubUrl = hub.url;
  await postEvents(hub, [
    event("receipt", "E2E-1", "berlin", 5),
    event("receipt", "E2E-1", "hamburg", 2),
    event("receipt", "E2E-1", "munich", 4),
    event("receipt", "SHOE-40", "berlin", 6),
    event("receipt", "SHOE-41", "berlin", 2),
    event("receipt", "SHOE-42", "berlin", 1),
  ]);
  const context = await chromium.newContext(geolocation ? { geolocation, permissions: ["geolocation"] } : {});
  const page = await context.newPage();
  const directory = [];
  page.on("request", (r) => r.url().includes("/v1/locations") && directory.push(r.url()));
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${pages.url}/stores.html`);
  return {
    hub,
    page,
    directory,
    context,
    async cleanup() {
      await context.close();
      await hub.stop();
      await pages.close();
    },
  };
}

/** Everything `selector` shows, through its own shadow root and those of the elements inside. */
function deepText(page, selector) {
  return page.locator(selector).evaluate((host) => {
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) return node.textContent;
      if (node.nodeType === Node.ELEMENT_NODE && node.hidden) return "";
      let out = "";
      for (const child of (node.shadowRoot ?? node).childNodes) out += walk(child);
      // Block-level parts read as separate words.
      return node.nodeType === Node.ELEMENT_NODE ? `${out} ` : out;
    };
    return walk(host).replace(/\s+/g, " ");
  });
}

/** The stores `selector` lists, in the order shown. */
function listed(page, selector) {
  return page.locator(selector).evaluate((host) => [...host.shadowRoot.querySelectorAll("li")].map((li) => li.dataset.location));
}

const shows = (page, selector, needle) => until(async () => (await deepText(page, selector)).includes(needle), `${selector} to show "${needle}"`);
const order = (page, selector, want) =>
  until(async () => JSON.stringify(await listed(page, selector)) === JSON.stringify(want), `${selector} to list ${want}`);

test("near=auto: asks for the location only on a click, then lists the nearest stores live, out of stock last, on the page's one stream", async () => {
  const s = await setup({ geolocation: HAMBURG });
  try {
    const { page } = s;
    // The fixed list (near="LAT,LNG") loads at once; the "auto" one waits for the shopper.
    await order(page, "#fixed", ["hamburg", "berlin", "munich"]);
    await shows(page, "#near", "Use my location");
    assert.equal(s.directory.length, 1, `only the fixed list asked the directory: ${s.directory}`);
    assert.ok(s.directory[0].includes("near=53.550,9.990"), s.directory[0]);

    await page.locator("#near").getByRole("button", { name: "Use my location" }).click();
    await order(page, "#near", ["hamburg", "berlin", "munich"]);
    const text = await deepText(page, "#near");
    for (const needle of ["Hamburg Altona", "3.8 km", "Ready in 2 hours", "Berlin Mitte", "255 km", "Ready in 1 hour", "Ready tomorrow", "Only 2 left", "In stock: 5", "In stock: 4", "Make this my store"]) {
      assert.ok(text.includes(needle), `"${needle}" in ${text}`);
    }
    assert.ok(!text.includes("Use my location"), text);
    // One "Live" line for the list (the last store's, through `::part(link)`), not one per store.
    const liveLines = () =>
      page.locator("#near").evaluate((host) =>
        [...host.shadowRoot.querySelectorAll("shelfcast-availability")].filter((e) => e.shadowRoot?.querySelector(".live")?.checkVisibility()).length,
      );
    await until(async () => (await liveLines()) === 1, "one live line");
    // Berlin, the second nearest, sells out: it goes last, with its state in words.
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 5)]);
    await order(page, "#near", ["hamburg", "munich", "berlin"]);
    await order(page, "#fixed", ["hamburg", "munich", "berlin"]);
    await shows(page, "#near", "Out of stock");
    // Back in stock: back in its place.
    await postEvents(s.hub, [event("receipt", "E2E-1", "berlin", 3)]);
    await order(page, "#near", ["hamburg", "berlin", "munich"]);
    // Every store of both lists and every size of the grid over one stream.
    assert.equal(await metric(s.hub, "shelfcast_open_streams"), 1);
  } finally {
    await s.cleanup();
  }
});

test("near=auto with the location denied: says so, asks no store, and the page still works", async () => {
  const s = await setup();
  try {
    const { page } = s;
    await order(page, "#fixed", ["hamburg", "berlin", "munich"]);
    await page.locator("#near").getByRole("button", { name: "Use my location" }).click();
    await shows(page, "#near", "Your location is not available");
    const errors = await page.evaluate(() => window.shelfcastEvents.filter((e) => e.name === "error").map((e) => [e.id, e.detail.code]));
    assert.deepEqual(errors, [["near", "location_unavailable"]]);
    assert.equal(s.directory.length, 1, `no directory request for the denied list: ${s.directory}`);
    // The button stays, to try again once allowed.
    assert.equal(await page.locator("#near").getByRole("button", { name: "Use my location" }).count(), 1);
  } finally {
    await s.cleanup();
  }
});

test("Make this my store: remembered for the shop, used by location=auto here and after a reload", async () => {
  const s = await setup();
  try {
    const { page } = s;
    await shows(page, "#mine", "Choose your store");
    await order(page, "#fixed", ["hamburg", "berlin", "munich"]);
    // Keyboard only: focus Berlin's "Make this my store" and press Enter.
    const make = page.locator("#fixed li[data-location=berlin] button.mine");
    await make.focus();
    await page.keyboard.press("Enter");
    await shows(page, "#mine", "In stock: 5");
    assert.equal(await make.getAttribute("aria-pressed"), "true");
    assert.equal((await make.textContent()).trim(), "My store");
    const chosen = await page.evaluate(() => window.shelfcastEvents.filter((e) => e.name === "store-chosen").map((e) => e.detail.location));
    assert.deepEqual(chosen, ["berlin"]);
    // Live at the remembered store.
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 3)]);
    await shows(page, "#mine", "Only 2 left");
    // Another page of the shop: the element there uses it too.
    await page.reload();
    await shows(page, "#mine", "Only 2 left");
    await until(async () => (await page.locator("#fixed li[data-location=berlin] button.mine").getAttribute("aria-pressed")) === "true", "Berlin marked as mine");
    // Choosing another store moves every location="auto" element of the page.
    await page.locator("#fixed li[data-location=munich] button.mine").click();
    await shows(page, "#mine", "In stock: 4");
  } finally {
    await s.cleanup();
  }
});

test("the size grid: one live cell per size, the chosen size reserves its own SKU, by keyboard", async () => {
  const s = await setup();
  try {
    const { page } = s;
    const cell = (label) => page.locator("#sizes").getByRole("button", { name: new RegExp(`^${label}`) });
    await until(async () => (await cell("42").getAttribute("aria-label")) === "42: Low stock", "cell 42 low");
    assert.equal(await cell("40").getAttribute("aria-label"), "40: In stock");
    assert.equal(await cell("41").getAttribute("aria-pressed"), "true", "the element's sku is chosen first");
    await shows(page, "#sizes", "Only 2 left");
    // One size sells out: only its cell changes.
    await postEvents(s.hub, [event("sale", "SHOE-42", "berlin", 1)]);
    await until(async () => (await cell("42").getAttribute("aria-label")) === "42: Out of stock", "cell 42 out");
    assert.match(await cell("42").getAttribute("class"), /out_of_stock/);
    assert.equal(await cell("40").getAttribute("aria-label"), "40: In stock");
    // Keyboard: focus size 40, Enter chooses it, Tab reaches its reserve button, Enter reserves.
    await cell("40").focus();
    await page.keyboard.press("Enter");
    assert.equal(await cell("40").getAttribute("aria-pressed"), "true");
    await shows(page, "#sizes", "In stock: 6");
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        let e = document.activeElement;
        while (e?.shadowRoot?.activeElement) e = e.shadowRoot.activeElement;
        return e?.textContent?.trim();
      });
      if (focused === "Reserve for pickup") break;
    }
    await page.keyboard.press("Enter");
    const reserved = await until(
      () => page.evaluate(() => window.shelfcastEvents.find((e) => e.name === "reserved")?.detail),
      "a reservation",
    );
    assert.equal(reserved.sku, "SHOE-40");
    const held = await (await hubFetch(s.hub, "/v1/availability?sku=SHOE-40&location=berlin")).json();
    assert.equal(held.positions[0].reserved, 1);
    const other = await (await hubFetch(s.hub, "/v1/availability?sku=SHOE-41&location=berlin")).json();
    assert.equal(other.positions[0].reserved, 0);
  } finally {
    await s.cleanup();
  }
});

test("the stores and sizes in German and French", async () => {
  const s = await setup();
  try {
    const { page } = s;
    await order(page, "#fixed", ["hamburg", "berlin", "munich"]);
    const words = {
      de: ["Abholbereit in 2 Stunden", "Abholbereit in 1 Stunde", "Morgen abholbereit", "Als meine Filiale merken", "Geringer Bestand", "Wählen Sie Ihre Filiale"],
      fr: ["Prêt dans 2 heures", "Prêt dans 1 heure", "Prêt demain", "Choisir ce magasin", "Stock faible", "Choisissez votre magasin"],
    };
    for (const [locale, needles] of Object.entries(words)) {
      await page.evaluate((locale) => document.querySelectorAll("shelfcast-availability").forEach((e) => e.setAttribute("locale", locale)), locale);
      for (const needle of needles.slice(0, 4)) await shows(page, "#fixed", needle);
      await shows(page, "#fixed", "3,8 km");
      await until(async () => (await page.locator("#sizes").getByRole("button", { name: /^42/ }).getAttribute("aria-label")) === `42: ${needles[4]}`, `cell words in ${locale}`);
      await shows(page, "#mine", needles[5]);
    }
  } finally {
    await s.cleanup();
  }
});

test("under a strict Content Security Policy with Trusted Types: the list and the grid work, and nothing is reported", async () => {
  const s = await setup({ geolocation: HAMBURG, strict: true });
  try {
    const { page } = s;
    await order(page, "#fixed", ["hamburg", "berlin", "munich"]);
    await shows(page, "#fixed", "Ready in 2 hours");
    await page.locator("#near").getByRole("button", { name: "Use my location" }).click();
    await order(page, "#near", ["hamburg", "berlin", "munich"]);
    await until(async () => (await page.locator("#sizes").getByRole("button", { name: /^42/ }).getAttribute("aria-label")) === "42: Low stock", "cell 42 low");
    // Styled by the module's constructed sheet: the chosen cell's border is the accent colour.
    const border = await page.locator("#sizes").getByRole("button", { name: /^41/ }).evaluate((b) => getComputedStyle(b).borderTopWidth);
    assert.equal(border, "2px");
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  } finally {
    await s.cleanup();
  }
});

test("mount() with near and skus: the same arrangements without a custom element in the page, updated and unmounted", async () => {
  const s = await setup();
  try {
    const { page } = s;
    await page.goto(page.url().replace("stores.html", "mount.html"));
    await page.waitForFunction(() => window.view !== undefined);
    await page.evaluate(() => window.view.update({ locations: undefined, near: "53.55,9.99", limit: 2 }));
    await order(page, "#m", ["hamburg", "berlin"]);
    await page.evaluate(() => window.view.update({ limit: 3 }));
    await order(page, "#m", ["hamburg", "berlin", "munich"]);
    // From the list to a size grid at one store.
    await page.evaluate(() => window.view.update({ near: undefined, location: "berlin", skus: ["SHOE-40", "SHOE-41"], labels: ["40", "41"] }));
    await until(async () => (await page.locator("#m").getByRole("button", { name: /^41/ }).getAttribute("aria-label")) === "41: Low stock", "cell 41 low");
    // And back to a plain view of one store.
    await page.evaluate(() => window.view.update({ skus: undefined, labels: undefined, location: "hamburg" }));
    await shows(page, "#m", "Only 2 left");
    await page.evaluate(() => window.view.unmount());
    assert.equal(await deepText(page, "#m"), " ");
  } finally {
    await s.cleanup();
  }
});
