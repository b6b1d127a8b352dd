// The element on a shop whose pages send a strict Content Security Policy: styled exactly as
// without one (its styles are a constructed sheet, no inline <style>), working under Trusted
// Types, and saying clearly when the policy blocks its WebAssembly.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, startPages, browser, postEvents, event, shadowText, pagesDir, until } from "./harness.js";

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

/** The policies a shop sends, by the page's `?csp=` (none: no header). */
const POLICIES = {
  strict: (hub) => `default-src 'none'; script-src 'self' ${hub} 'wasm-unsafe-eval'; connect-src ${hub}; style-src 'self'; img-src 'self'`,
  trusted: (hub) => `${POLICIES.strict(hub)}; require-trusted-types-for 'script'; trusted-types shelfcast`,
  nowasm: (hub) => `default-src 'none'; script-src 'self' ${hub}; connect-src ${hub}; style-src 'self'; img-src 'self'`,
};

async function setup() {
  let hubUrl;
  const pages = await startPages(pagesDir, () => hubUrl, (hub, url) => {
    const csp = new URL(url, "http://x").searchParams.get("csp");
    return csp ? { "content-security-policy": POLICIES[csp](hub) } : {};
  });
  const hub = await startHub({ origins: [pages.url] });
  hubUrl = hub.url;
  await postEvents(hub, [event("receipt", "E2E-1", "berlin", 5)]);
  const context = await chromium.newContext();
  return {
    hub,
    pages,
    context,
    async open(csp) {
      const page = await context.newPage();
      const console = [];
      // What a policy or the element reports (a missing favicon's 404 is neither).
      page.on("console", (m) => m.type() === "error" && /Content Security Policy|Trusted|Shelfcast/i.test(m.text()) && console.push(m.text()));
      await page.goto(`${pages.url}/strict.html${csp ? `?csp=${csp}` : ""}`);
      return { page, console };
    },
    async cleanup() {
      await context.close();
      await hub.stop();
      await pages.close();
    },
  };
}

const shows = (page, needle) => until(async () => (await shadowText(page, "#one")).includes(needle), `"${needle}"`);

/** Computed styles of the reserve button, the status text and the hidden live region. */
function styles(page) {
  return page.locator("#one").evaluate((el) => {
    const pick = (node, props) => {
      const s = getComputedStyle(node);
      return Object.fromEntries(props.map((p) => [p, s.getPropertyValue(p)]));
    };
    const root = el.shadowRoot;
    return {
      button: pick(root.querySelector("button.reserve"), ["background-color", "color", "border-radius", "padding", "border", "cursor", "font-family"]),
      status: pick(root.querySelector(".text"), ["color", "font-weight", "display"]),
      list: pick(root.querySelector(".rows"), ["list-style-type", "display", "padding-left"]),
      live: pick(root.querySelector(".sr-only"), ["position", "width", "height", "overflow", "clip"]),
    };
  });
}

test("under style-src 'self' the element is styled exactly as without a policy, with no violation", async () => {
  const s = await setup();
  try {
    const free = await s.open();
    await shows(free.page, "In stock: 5");
    const strict = await s.open("strict");
    await shows(strict.page, "In stock: 5");
    await shows(strict.page, "Live");
    const [a, b] = [await styles(free.page), await styles(strict.page)];
    assert.equal(b.button["background-color"], "rgb(11, 87, 208)", "the accent colour, not a grey system button");
    assert.equal(b.live.position, "absolute", "the screen-reader text stays off screen");
    assert.deepEqual(b, a);
    assert.deepEqual(await strict.page.evaluate(() => window.cspViolations), []);
    assert.deepEqual(strict.console, []);
  } finally {
    await s.cleanup();
  }
});

test("under Trusted Types (trusted-types shelfcast) it renders, goes live and reserves", async () => {
  const s = await setup();
  try {
    const { page, console } = await s.open("trusted");
    await shows(page, "In stock: 5");
    await shows(page, "Live");
    await page.locator("#one").locator("button.reserve").click();
    await shows(page, "Reserved for you: 1");
    await until(async () => (await page.evaluate(() => window.shelfcastEvents.some((e) => e.name === "reserved"))), "the hub's grant");
    await postEvents(s.hub, [event("sale", "E2E-1", "berlin", 2)]);
    await shows(page, "Only 2 left");
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    assert.deepEqual(console, []);
  } finally {
    await s.cleanup();
  }
});

test("without 'wasm-unsafe-eval' the element says so: one console error, a csp event, a fallback text", async () => {
  const s = await setup();
  try {
    const { page, console } = await s.open("nowasm");
    await shows(page, "Stock information is unavailable");
    const errors = await until(() => page.evaluate(() => window.shelfcastEvents.filter((e) => e.name === "error")), "shelfcast:error");
    assert.equal(errors.length, 1);
    assert.equal(errors[0].detail.code, "csp");
    assert.match(errors[0].detail.message, /'wasm-unsafe-eval'/);
    const ours = console.filter((m) => m.startsWith("Shelfcast:"));
    assert.deepEqual(ours, [errors[0].detail.message], "one console error naming the directive");
  } finally {
    await s.cleanup();
  }
});
