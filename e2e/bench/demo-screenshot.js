// The demo product page as a shopper near Berlin sees it, for docs/demo.png:
//   cd e2e && node bench/demo-screenshot.js ../docs/demo.png   (after a release build)
// Starts `shelfcast serve --demo` on loopback, lets the shopper's browser tell its location,
// presses "Use my location" and waits until every store and size shows its stock.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { browser, repo } from "../tests/harness.js";

const out = process.argv[2] ?? "demo.png";
const bin = process.env.SHELFCAST_BIN ?? join(repo, "target", "release", "shelfcast");
const data = mkdtempSync(join(tmpdir(), "shelfcast-demo-"));
const hub = spawn(bin, ["serve", "--demo", "--listen", "127.0.0.1:0", "--data", data], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SHELFCAST_LOG: "warn" } });
const url = (await new Promise((r) => createInterface({ input: hub.stdout }).once("line", r))).replace("listening on ", "").trim();
const chromium = await browser();
try {
  const context = await chromium.newContext({ viewport: { width: 1200, height: 900 }, geolocation: { latitude: 52.52, longitude: 13.405 }, permissions: ["geolocation"] });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.locator("#near").getByRole("button", { name: "Use my location" }).click();
  // Every inner element painted (no "Checking…" left) and the live line up.
  await page.waitForFunction(() => {
    const inner = [...document.querySelectorAll("shelfcast-availability")].flatMap((e) => [e, ...(e.shadowRoot?.querySelectorAll("shelfcast-availability") ?? [])]);
    return inner.length > 8 && inner.every((e) => !/Checking/.test(e.shadowRoot?.textContent ?? "Checking"));
  }, null, { timeout: 15_000 });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await chromium.close();
  hub.kill();
}
