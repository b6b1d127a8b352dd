// Console budgets, measured against a real hub in Chromium on this machine:
//   1. bytes a browser downloads for /console/ (each file as served: identity, gzip, brotli);
//   2. navigation start → first contentful paint, and → the sign-in form ready (the "Token"
//      field in the DOM, which the WebAssembly renders), median and worst of 10 cold loads;
//   3. a reservation made → on the signed-in pickup desk, median and p99 of 50.
// Run: cd e2e && node bench/console.js   (after scripts/build-console.sh and a release build)
import { startHub, browser, postEvents, event, reserve, served } from "../tests/harness.js";

const STAFF = "bench-staff";
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)];
};

const hub = await startHub({ extra: ["--device-token", `${STAFF}=bench-store`, "--reservation-rate", "0"] });
const chromium = await browser();
try {
  const files = ["/console/", "/console/console.css", "/console/console.js", "/console/console_bg.wasm"];
  const totals = { identity: 0, gzip: 0, br: 0 };
  console.log("| file | raw | gzip | brotli |\n|---|---:|---:|---:|");
  for (const f of files) {
    const sizes = {};
    for (const enc of ["identity", "gzip", "br"]) {
      sizes[enc] = (await served(hub, f, enc)).body.length;
      totals[enc] += sizes[enc];
    }
    console.log(`| ${f} | ${sizes.identity} | ${sizes.gzip} | ${sizes.br} |`);
  }
  console.log(`| total | ${totals.identity} | ${totals.gzip} | ${totals.br} |`);

  const fcp = [];
  const ready = [];
  for (let i = 0; i < 10; i++) {
    const context = await chromium.newContext();
    const page = await context.newPage();
    await page.goto(`${hub.url}/console/`);
    await page.getByLabel("Token").waitFor();
    const [paint, form] = await page.evaluate(() => [
      performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      performance.now(),
    ]);
    fcp.push(paint);
    ready.push(form);
    await context.close();
    process.stderr.write(`\rcold loads ${i + 1}/10`);
  }
  process.stderr.write("\n");
  console.log(`first contentful paint: median ${pct(fcp, 0.5).toFixed(0)} ms, worst ${Math.max(...fcp).toFixed(0)} ms`);
  console.log(`sign-in form ready: median ${pct(ready, 0.5).toFixed(0)} ms, worst ${Math.max(...ready).toFixed(0)} ms`);

  await postEvents(hub, [event("receipt", "BENCH", "bench-store", 1000)]);
  const context = await chromium.newContext();
  const page = await context.newPage();
  await page.goto(`${hub.url}/console/`);
  await page.getByLabel("Token").fill(STAFF);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Live").waitFor();
  const delays = [];
  for (let i = 0; i < 50; i++) {
    const t0 = Date.now();
    const { body } = await reserve(hub, "BENCH", "bench-store", 1);
    await page.locator(`li.pickup[data-id="${body.id}"]`).waitFor();
    delays.push(Date.now() - t0);
    process.stderr.write(`\rreservations ${i + 1}/50`);
  }
  process.stderr.write("\n");
  console.log(`reservation made → on the desk: median ${pct(delays, 0.5)} ms, p99 ${pct(delays, 0.99)} ms`);
  await context.close();
} finally {
  await chromium.close();
  await hub.stop();
}
