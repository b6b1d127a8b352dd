// The element as a shop developer meets it: keyboard focus, a hub behind a path prefix,
// mount().update, what the live region says, honest events, holds that end elsewhere, and an
// accessibility check of every state. A real hub, the page on another origin, a real Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { startHub, startPages, startPrefixProxy, browser, postEvents, event, hubFetch, pagesDir, until, freePort, shadowText } from "./harness.js";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

/**
 * A hub stocked with E2E-1 at `stock`, the page server (its pages' `{{HUB}}` is the hub, or the
 * prefix proxy in front of it), and a fresh browser context. `allowed`: whether the hub lets
 * the pages' origin read it.
 */
async function setup({ stock = { berlin: 5, hamburg: 2 }, allowed = true, prefix } = {}) {
  let pageHub;
  const pages = await startPages(pagesDir, () => pageHub);
  const hub = await startHub({ origins: allowed ? [pages.url] : [] });
  const proxy = prefix ? await startPrefixProxy(hub.url, prefix) : undefined;
  pageHub = proxy?.url ?? hub.url;
  await postEvents(hub, Object.entries(stock).map(([location, qty]) => event("receipt", "E2E-1", location, qty)));
  const context = await chromium.newContext();
  const cleanup = async () => {
    await context.close();
    await hub.stop();
    await proxy?.close();
    await pages.close();
  };
  return { hub, pages, proxy, context, cleanup };
}

async function open(s, path) {
  const page = await s.context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${s.pages.url}/${path}`);
  return page;
}

const textIs = (page, sel, needle) => until(async () => (await shadowText(page, sel)).includes(needle), `${sel} to show "${needle}"`);
const recorded = (page, name, id) => page.evaluate(([n, i]) => window.shelfcastEvents.filter((e) => e.name === n && (!i || e.id === i)), [name, id]);
/** `host-id button-class` of what has the keyboard focus (through the shadow root), else its tag. */
const focused = (page) =>
  page.evaluate(() => {
    const a = document.activeElement;
    const inner = a?.shadowRoot?.activeElement;
    return inner ? `${a.id} ${inner.className}` : a?.tagName;
  });
/** The stored hold of the page (the hub's answer the element keeps), or undefined. */
const storedHold = (page) =>
  page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith("shelfcast:hold:"));
    return key && JSON.parse(localStorage.getItem(key));
  });

test("keyboard only: reserve, cancel, reserve again, and the focus stays on the control", async () => {
  const s = await setup();
  try {
    const page = await open(s, "developer.html");
    await textIs(page, "#low", "Only 5 left");
    await page.keyboard.press("Tab");
    assert.equal(await focused(page), "low reserve", "Tab reaches the reserve button first");
    await page.keyboard.press("Enter");
    await until(async () => (await recorded(page, "reserved", "low")).length === 1, "the hold");
    await until(async () => (await focused(page)) === "low cancel", "the focus on the same control, now Cancel");
    await page.keyboard.press("Enter");
    await until(async () => (await recorded(page, "released", "low")).length === 1, "the release");
    assert.equal(await focused(page), "low reserve", "the focus stays after Cancel");
    await page.keyboard.press("Enter");
    await until(async () => (await recorded(page, "reserved", "low")).length === 2, "the second hold");
    await until(async () => (await focused(page)) === "low cancel", "the focus stays after reserving again");
    const reserved = (await (await hubFetch(s.hub, "/v1/availability?sku=E2E-1&location=berlin")).json()).positions[0].reserved;
    assert.equal(reserved, 1, "the hub holds the one unit reserved by keyboard");
  } finally {
    await s.cleanup();
  }
});

test("a hub behind a path prefix: the script's base URL is the default hub", async () => {
  const s = await setup({ prefix: "/stock" });
  try {
    const page = await open(s, "developer.html");
    await textIs(page, "#low", "Only 5 left");
    await textIs(page, "#low", "Live");
    await page.locator("#low").locator("button.reserve").click();
    await until(async () => (await recorded(page, "reserved", "low")).length === 1, "a hold through the prefix");
    const asked = s.proxy.paths;
    assert.ok(asked.some((p) => p.startsWith("/stock/v1/stream?")), `the stream under the prefix: ${asked}`);
    assert.ok(asked.some((p) => p === "/stock/v1/reservations"), `the reservation under the prefix: ${asked}`);
    assert.ok(!asked.some((p) => p.startsWith("/v1/")), `nothing asked outside the prefix: ${asked}`);
    assert.deepEqual(await recorded(page, "error"), []);
  } finally {
    await s.cleanup();
  }
});

test("mount().update merges with the current options and never passes through a missing location", async () => {
  const s = await setup();
  try {
    const page = await open(s, "mount.html");
    const rows = () => page.locator("#m").evaluate((el) => el.shadowRoot?.querySelectorAll("li").length ?? 0);
    await until(async () => (await rows()) === 2 && (await shadowText(page, "#m")).includes("Hamburg"), "two stores");
    await page.evaluate(() => window.view.update({ location: "berlin", locations: undefined }));
    await until(async () => (await rows()) === 1, "one store");
    await page.evaluate(() => window.view.update({ locale: "de" }));
    await textIs(page, "#m", "Auf Lager: 5");
    assert.equal(await rows(), 1, "the store list given to mount() does not come back");
    assert.ok(!(await shadowText(page, "#m")).includes("Hamburg"));
    assert.deepEqual(await recorded(page, "error"), [], "no shelfcast:error on the way");
    const changes = await recorded(page, "change", "m");
    assert.ok(changes.length > 0, "events fire on the mount() container");
  } finally {
    await s.cleanup();
  }
});

test("the live region says status changes, not every count", async () => {
  const s = await setup({ stock: { berlin: 5 } });
  try {
    const page = await open(s, "product.html");
    const said = () => page.locator("#one").evaluate((el) => el.shadowRoot.querySelector("[aria-live]").textContent);
    await textIs(page, "#one", "In stock: 5");
    assert.equal(await said(), "In stock");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await textIs(page, "#one", "Only 3 left");
    const low = await said();
    assert.equal(low, "Low stock");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 1)]);
    await textIs(page, "#one", "Only 2 left");
    assert.equal(await said(), low, "a count within low stock is not announced");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await textIs(page, "#one", "Out of stock");
    assert.equal(await said(), "Out of stock");
  } finally {
    await s.cleanup();
  }
});

test("shelfcast:change says the status and availability the element shows", async () => {
  const s = await setup({ stock: { berlin: 5, hamburg: 2 } });
  try {
    const page = await open(s, "developer.html");
    await textIs(page, "#low", "Only 5 left");
    const last = async (id, location) => (await recorded(page, "change", id)).filter((e) => e.detail.location === location).at(-1)?.detail;
    await until(async () => (await last("low", "berlin")) && (await last("list", "berlin")), "both elements' first change");
    // The hub's threshold is 3; #low's is 10, #list's the default.
    assert.deepEqual([(await last("low", "berlin")).status, (await last("low", "berlin")).available], ["low_stock", 5]);
    assert.deepEqual([(await last("list", "berlin")).status, (await last("list", "berlin")).available], ["in_stock", 5]);
    await page.locator("#low").locator("button.reserve").click();
    await until(async () => (await recorded(page, "reserved", "low")).length === 1, "the hold");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await textIs(page, "#low", "Only 2 left");
    await until(async () => (await last("low", "berlin"))?.available === 2, "the change after the sale");
    assert.equal((await last("low", "berlin")).status, "low_stock");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await until(async () => (await last("list", "berlin"))?.status === "out_of_stock", "out of stock for both");
    assert.equal((await last("low", "berlin")).status, "out_of_stock");
  } finally {
    await s.cleanup();
  }
});

test("shelfcast:error when the hub refuses the page's origin or cannot be reached", async () => {
  const s = await setup({ allowed: false });
  try {
    const page = await open(s, "elsewhere.html");
    await until(async () => (await recorded(page, "error", "far")).length > 0, "an error for the refused origin");
    const [refused] = await recorded(page, "error", "far");
    assert.equal(refused.detail.code, "unreachable");
    assert.ok(refused.detail.message.includes(s.hub.url) && refused.detail.message.includes("--allow-origin"), refused.detail.message);
    await textIs(page, "#far", "Stock information is unavailable");

    const dead = `http://127.0.0.1:${await freePort()}`;
    const other = await open(s, `elsewhere.html?hub=${encodeURIComponent(dead)}`);
    await until(async () => (await recorded(other, "error", "far")).length > 0, "an error for a hub where nothing listens");
    const [unreachable] = await recorded(other, "error", "far");
    assert.equal(unreachable.detail.code, "unreachable");
    assert.ok(unreachable.detail.message.startsWith(dead), unreachable.detail.message);
    // Said once, not at every retry.
    await textIs(other, "#far", "Stock information is unavailable");
    assert.equal((await recorded(other, "error", "far")).length, 1);
  } finally {
    await s.cleanup();
  }
});

test("a hold released elsewhere leaves the open page at once, and one released while away says so at the next visit", async () => {
  const s = await setup();
  try {
    const release = async ({ id, token }) => {
      const r = await hubFetch(s.hub, `/v1/reservations/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
    };
    const page = await open(s, "developer.html");
    await textIs(page, "#low", "Only 5 left");
    await page.locator("#low").locator("button.reserve").click();
    await until(async () => (await recorded(page, "reserved", "low")).length === 1, "the hold");
    const hold = await until(() => storedHold(page), "the stored hold");
    await release(hold);
    const [released] = await until(async () => {
      const r = await recorded(page, "released", "low");
      return r.length > 0 && r;
    }, "shelfcast:released");
    assert.deepEqual([released.detail.id, released.detail.reason], [hold.id, "released"]);
    await textIs(page, "#low", "Your reservation was cancelled.");
    assert.equal(await storedHold(page), undefined, "forgotten");
    assert.equal(await page.locator("#low").locator("button.reserve").count(), 1, "the shopper can reserve again");

    await page.locator("#low").locator("button.reserve").click();
    await until(async () => (await recorded(page, "reserved", "low")).length === 2, "a second hold");
    const second = await until(() => storedHold(page), "the second stored hold");
    await page.close();
    await release(second);
    const again = await open(s, "developer.html");
    const [told] = await until(async () => {
      const r = await recorded(again, "released", "low");
      return r.length > 0 && r;
    }, "shelfcast:released at the next visit");
    assert.deepEqual([told.detail.id, told.detail.reason], [second.id, "released"]);
    assert.equal(await storedHold(again), undefined);
  } finally {
    await s.cleanup();
  }
});

/** axe-core over the whole page, shadow roots included: the WCAG 2.x A and AA rules. */
async function violations(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }),
  );
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

test("every state of the element passes axe-core's WCAG A and AA checks", async () => {
  const s = await setup({ stock: { berlin: 5, hamburg: 2 } });
  try {
    const page = await open(s, "developer.html");
    await textIs(page, "#list", "Munich");
    await textIs(page, "#list", "Live");
    // In stock, low stock, out of stock (a store never stocked), each reservable.
    assert.deepEqual(await violations(page), [], "in, low and out of stock");
    await page.locator("#low").locator("button.reserve").click();
    await textIs(page, "#low", "Reserved for you");
    await textIs(page, "#low", "left (until");
    assert.deepEqual(await violations(page), [], "a hold counting down");
    // A hold the hub refuses: the stream is cut (the view goes stale), the last units at
    // hamburg sell, and the shopper's click meets the hub's 409.
    await page.route("**/v1/stream*", (route) => route.abort());
    await page.evaluate(() => document.querySelector("#list").setAttribute("locations", "hamburg,berlin"));
    await textIs(page, "#list", "Reconnecting");
    await postEvents(s.hub, [event("sale", "E2E-1", "hamburg", 2)]);
    await page.locator("#list").locator("li[data-position='E2E-1@hamburg'] button.reserve").click();
    await textIs(page, "#list", "Just sold out at Hamburg.");
    assert.deepEqual(await violations(page), [], "a refused hold, a stale view");
    // A configuration the element cannot show.
    await page.evaluate(() => document.querySelector("#list").setAttribute("sku", "not a sku"));
    await textIs(page, "#list", "This product code is not valid.");
    assert.deepEqual(await violations(page), [], "a configuration error");
    // A hub that cannot be reached.
    const far = await open(s, `elsewhere.html?hub=${encodeURIComponent(`http://127.0.0.1:${await freePort()}`)}`);
    await textIs(far, "#far", "Stock information is unavailable");
    assert.deepEqual(await violations(far), [], "unreachable");
    // Loading (the stream's answer held back), then reserving (the hub's answer held back), in
    // a context of its own (no stored hold), after the shopper above let theirs go.
    await page.locator("#low").locator("button.cancel").click();
    await until(async () => (await recorded(page, "released", "low")).length === 1, "the hold let go");
    const fresh = await chromium.newContext();
    const slow = await fresh.newPage();
    await slow.route("**/v1/stream*", () => {});
    await slow.goto(`${s.pages.url}/developer.html`);
    await textIs(slow, "#low", "Checking stock");
    assert.deepEqual(await violations(slow), [], "loading");
    await slow.unroute("**/v1/stream*");
    await slow.route("**/v1/reservations", () => {});
    await slow.reload();
    await textIs(slow, "#low", "Only 5 left");
    await slow.locator("#low").locator("button.reserve").click();
    await textIs(slow, "#low", "Reserving…");
    assert.deepEqual(await violations(slow), [], "reserving");
    await fresh.close();
  } finally {
    await s.cleanup();
  }
});
