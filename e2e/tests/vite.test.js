// The npm package as shops consume it: a Vite app depending on `shelfcast` (file:../../pkg)
// is built, served on its own origin and run in Chromium against a real hub.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startHub, startPages, browser, postEvents, event, shadowText } from "./harness.js";

const app = join(import.meta.dirname, "..", "vite-app");

/** Builds the app once, serves it (with `headers(hub)` on its pages) and runs it against a real hub. */
let built = false;
async function run(headers) {
  if (!built) execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: app, stdio: "inherit" });
  built = true;
  let hubUrl;
  const pages = await startPages(join(app, "dist"), () => hubUrl, headers);
  const hub = await startHub({ origins: [pages.url] });
  hubUrl = hub.url;
  const chromium = await browser();
  try {
    await postEvents(hub, [event("receipt", "E2E-1", "berlin", 6), event("receipt", "E2E-1", "hamburg", 2)]);
    const page = await chromium.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && /Content Security Policy|Trusted|Shelfcast/i.test(m.text()) && errors.push(m.text()));
    await page.goto(`${pages.url}/?hub=${encodeURIComponent(hub.url)}`);
    const wait = async (sel, needle) => {
      for (let i = 0; i < 400; i++) {
        if ((await shadowText(page, sel)).includes(needle)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.fail(`${sel} never showed "${needle}": ${await shadowText(page, sel)} ${errors}`);
    };
    await wait("#tag", "In stock: 6");
    await wait("#mounted", "En stock : 6");
    await wait("#mounted", "Plus que 2 en stock");
    await postEvents(hub, [event("sale", "E2E-1", "berlin", 5)]);
    await wait("#tag", "Only 1 left");
    await page.evaluate(() => window.mounted.update({ locale: "de" }));
    await wait("#mounted", "Nur noch 1 verfügbar");
    const weight = await page.locator("#tag").evaluate((el) => getComputedStyle(el.shadowRoot.querySelector(".text")).fontWeight);
    assert.equal(weight, "600", "styled: its constructed sheet applies");
    await page.evaluate(() => window.mounted.unmount());
    assert.equal(await shadowText(page, "#mounted"), "");
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    await hub.stop();
    await pages.close();
  }
}

test("a Vite build of the npm package defines and mounts the element", async () => {
  await run(() => ({}));
});

test("the same build under a strict Content Security Policy with Trusted Types", async () => {
  // The bundled wasm comes from the shop's own origin: fetched ('self' in connect-src) and
  // compiled ('wasm-unsafe-eval'); the streams and reservations go to the hub.
  await run((hub) => ({
    "content-security-policy": `default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ${hub}; style-src 'self'; img-src 'self' data:; require-trusted-types-for 'script'; trusted-types shelfcast`,
  }));
});
