// The npm package as shops consume it: a Vite app depending on `shelfcast` (file:../../pkg)
// is built, served on its own origin and run in Chromium against a real hub.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startHub, startPages, browser, postEvents, event, shadowText } from "./harness.js";

const app = join(import.meta.dirname, "..", "vite-app");

test("a Vite build of the npm package defines and mounts the element", async () => {
  execFileSync("npx", ["vite", "build", "--logLevel", "warn"], { cwd: app, stdio: "inherit" });
  const pages = await startPages(join(app, "dist"), () => "");
  const hub = await startHub({ origins: [pages.url] });
  const chromium = await browser();
  try {
    await postEvents(hub, [event("receipt", "E2E-1", "berlin", 6), event("receipt", "E2E-1", "hamburg", 2)]);
    const page = await chromium.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
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
    await page.evaluate(() => window.mounted.unmount());
    assert.equal(await shadowText(page, "#mounted"), "");
    assert.deepEqual(errors, []);
  } finally {
    await chromium.close();
    await hub.stop();
    await pages.close();
  }
});
