// The console end to end: a real hub, the console it serves, a real Chromium; the shopper's
// element on a shop page of another origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { startHub, startPages, browser, postEvents, event, availability, reserve, shadowText, pagesDir, until, repo, TOKEN, scratch } from "./harness.js";

const STAFF = "e2e-staff-berlin";
const ADMIN = "e2e-admin-secret";
// SHELFCAST_SCREENSHOTS=docs/console writes a screenshot of each page, desktop and phone width.
const shots = process.env.SHELFCAST_SCREENSHOTS;

let chromium;
before(async () => {
  chromium = await browser();
});
after(async () => {
  await chromium?.close();
});

async function setup() {
  let hubUrl;
  const pages = await startPages(pagesDir, () => hubUrl);
  const hub = await startHub({ origins: [pages.url], extra: ["--device-token", `${STAFF}=berlin@desk-berlin`, "--admin-token", ADMIN] });
  hubUrl = hub.url;
  await postEvents(hub, [event("receipt", "E2E-1", "berlin", 5), event("receipt", "E2E-2", "berlin", 9), event("receipt", "E2E-1", "hamburg", 2)]);
  const context = await chromium.newContext();
  const requests = [];
  context.on("request", (r) => requests.push(r));
  return {
    hub,
    pages,
    context,
    requests,
    async cleanup() {
      await context.close();
      await hub.stop();
      await pages.close();
    },
  };
}

async function signIn(s, token = STAFF) {
  const page = await s.context.newPage();
  page.on("pageerror", (e) => console.error("console page error:", e.message));
  await page.goto(`${s.hub.url}/console/`);
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  return page;
}

async function shoot(page, name) {
  if (!shots) return;
  const dir = join(repo, shots);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}-desktop.png`), fullPage: true });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(dir, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

/** Every request the browser made carried no token in its URL. */
function noTokenInUrls(s, tokens) {
  assert.ok(s.requests.length > 0);
  for (const r of s.requests) for (const t of tokens) assert.ok(!r.url().includes(t), `a token in ${r.url()}`);
}

test("a wrong token is refused with a clear message; the right one signs in, survives a reload, and signs out", async () => {
  const s = await setup();
  try {
    const page = await signIn(s, "not-a-token");
    await until(async () => (await page.getByRole("alert").textContent()).includes("not known"), "the refusal");
    await shoot(page, "sign-in");
    await page.getByLabel("Token").fill(STAFF);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: /Pickup desk/ }).waitFor();
    const cookies = await s.context.cookies();
    const session = cookies.find((c) => c.name === "shelfcast_session");
    assert.ok(session.httpOnly && session.sameSite === "Strict", "an HttpOnly, SameSite=Strict session cookie");
    assert.ok(!session.value.includes(STAFF), "the cookie is not the token");
    assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read the session");
    await page.reload();
    await page.getByRole("heading", { name: /Pickup desk/ }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Token").waitFor();
    assert.equal((await s.context.cookies()).find((c) => c.name === "shelfcast_session"), undefined);
    noTokenInUrls(s, [STAFF, "not-a-token"]);
  } finally {
    await s.cleanup();
  }
});

test("a reservation made through the API appears on the desk live; hand over fulfils it and on-hand drops", async () => {
  const s = await setup();
  try {
    const page = await signIn(s);
    await page.getByText("No pickups waiting.").waitFor();
    await page.getByText("Live").waitFor();
    const started = Date.now();
    const { body } = await reserve(s.hub, "E2E-1", "berlin", 2);
    const row = page.locator(`li.pickup[data-id="${body.id}"]`);
    await row.waitFor({ timeout: 5_000 });
    console.log(`console: the reservation appeared on the desk ${Date.now() - started} ms after it was made`);
    assert.match(await row.textContent(), /E2E-1/);
    await until(async () => /\d+:\d\d left/.test(await row.textContent()), "the time left");
    assert.match(await page.title(), /^\(1\) /, "the title counts the waiting pickups");
    await shoot(page, "desk");
    await row.getByRole("button", { name: "Hand over 2 × E2E-1" }).click();
    await row.waitFor({ state: "detached" });
    await page.getByRole("status").getByText("Handed over").waitFor();
    const holder = await fetch(`${s.hub.url}/v1/reservations/${body.id}`, { headers: { authorization: `Bearer ${body.token}` } });
    assert.equal((await holder.json()).status, "fulfilled");
    const p = await availability(s.hub, "E2E-1", "berlin");
    assert.equal(p.on_hand, 3);
    assert.equal(p.reserved, 0);
    noTokenInUrls(s, [STAFF]);
  } finally {
    await s.cleanup();
  }
});

test("release with 'not found': the shopper's element on the shop's page says the store could not set it aside", async () => {
  const s = await setup();
  try {
    const shop = await (await chromium.newContext()).newPage();
    await shop.goto(`${s.pages.url}/product.html`);
    const shopper = () => shop.locator("#one").evaluate((el) => el.shadowRoot?.textContent ?? "");
    await until(async () => (await shopper()).includes("In stock: 5"), "the element");
    await shop.locator("#one").locator("button.reserve").click();
    await until(async () => (await shopper()).includes("Reserved for you: 1"), "the shopper's hold");

    const page = await signIn(s);
    const row = page.locator("li.pickup", { hasText: "E2E-1" });
    await row.getByRole("button", { name: "Release" }).click();
    await row.getByLabel("Reason").selectOption("not_found");
    await shoot(page, "desk-release");
    await row.locator("form.release").getByRole("button", { name: "Release" }).click();
    await row.waitFor({ state: "detached" });
    await until(async () => (await shopper()).includes("The store could not set this item aside"), "the store's message on the shop's page");
    const released = await shop.evaluate(() => window.shelfcastEvents.find((e) => e.name === "released"));
    assert.equal(released.detail.reason, "released_by_store");
    assert.equal((await availability(s.hub, "E2E-1", "berlin")).reserved, 0, "the stock is back at once");
    await shop.context().close();
  } finally {
    await s.cleanup();
  }
});

/** The history panel's rows: [what, qty, by, on hand] of each, newest first. */
async function historyRows(page) {
  return page.locator("#history tr.change").evaluateAll((rows) =>
    rows.map((r) => [".what", ".qty", ".by", ".on-hand"].map((c) => r.querySelector(c).textContent.trim())),
  );
}

test("an oversold position appears on the oversold page with what caused it, and a count from the stock look-up resolves it", async () => {
  const s = await setup();
  const till = `token-${createHash("sha256").update(TOKEN).digest("hex").slice(0, 8)}`;
  try {
    const page = await signIn(s);
    await page.getByRole("button", { name: "Oversold" }).click();
    await page.getByText("Nothing is oversold.").waitFor();
    await postEvents(s.hub, [event("sale", "E2E-2", "berlin", 12)]);
    const row = page.locator("tr.position", { hasText: "E2E-2" });
    await row.waitFor({ timeout: 10_000 });
    assert.equal((await row.locator(".available").textContent()).trim(), "-3");
    await row.getByRole("button", { name: "History E2E-2 @ berlin" }).click();
    await until(async () => (await historyRows(page)).length === 2, "the history of the oversold position");
    assert.deepEqual(await historyRows(page), [
      ["Sale", "12", till, "-3"],
      ["Receipt", "9", till, "9"],
    ], "what caused it: the sale of 12 against 9 on hand, and who recorded it");
    await shoot(page, "oversold");

    await page.getByRole("button", { name: "Stock look-up" }).click();
    await page.getByLabel("SKU").fill("E2E-2");
    await page.getByRole("button", { name: "Look up" }).click();
    const stock = page.locator('tr.position[data-location="berlin"]');
    await until(async () => (await stock.locator(".on-hand").textContent().catch(() => "")).trim() === "-3", "the position, live");
    await postEvents(s.hub, [event("receipt", "E2E-2", "berlin", 1)]);
    await until(async () => (await stock.locator(".on-hand").textContent().catch(() => "")).trim() === "-2", "a receipt, live");
    await stock.getByLabel("Qty E2E-2 @ berlin").fill("4");
    await stock.getByRole("button", { name: "Count" }).click();
    await until(async () => (await availability(s.hub, "E2E-2", "berlin")).on_hand === 4, "the count on the hub");
    await until(async () => (await stock.locator(".on-hand").textContent().catch(() => "")).trim() === "4", "the count, live");

    // The history pages: 20 at a time, older ones on request; a change arrives live at the top.
    await postEvents(s.hub, Array.from({ length: 20 }, () => event("receipt", "E2E-2", "berlin", 1)));
    await until(async () => (await availability(s.hub, "E2E-2", "berlin")).on_hand === 24, "twenty receipts");
    await stock.getByRole("button", { name: "History E2E-2 @ berlin" }).click();
    await until(async () => (await historyRows(page)).length === 20, "the newest page");
    assert.deepEqual((await historyRows(page))[0], ["Receipt", "1", till, "24"]);
    await page.getByRole("button", { name: "Older changes" }).click();
    await until(async () => (await historyRows(page)).length === 24, "the older page");
    assert.deepEqual((await historyRows(page)).slice(20), [
      ["Count", "4", "desk-berlin", "4"],
      ["Receipt", "1", till, "-2"],
      ["Sale", "12", till, "-3"],
      ["Receipt", "9", till, "9"],
    ], "the count the console made, by the staff token's label");
    assert.equal(await page.getByRole("button", { name: "Older changes" }).count(), 0, "the oldest page");
    const { body } = await reserve(s.hub, "E2E-2", "berlin", 2);
    await until(async () => (await historyRows(page)).length === 25, "a hold, live");
    assert.deepEqual((await historyRows(page))[0], ["Reservation: Held", "2", "shopper", "24"]);
    assert.ok(body.id);
    await shoot(page, "stock");
    await page.getByRole("button", { name: "Oversold" }).click();
    await page.getByText("Nothing is oversold.").waitFor();
    noTokenInUrls(s, [STAFF]);
  } finally {
    await s.cleanup();
  }
});

test("the admin token sees any store; a staff token only its own; German and French", async () => {
  const s = await setup();
  try {
    const page = await signIn(s, ADMIN);
    await page.getByLabel("Store").fill("hamburg");
    await page.getByLabel("Store").press("Enter");
    await page.getByRole("heading", { name: /hamburg/ }).waitFor();
    const r = await fetch(`${s.hub.url}/v1/reservations?location=hamburg`, { headers: { authorization: `Bearer ${STAFF}` } });
    assert.equal(r.status, 403, "a staff token of berlin does not list hamburg");
    await page.getByLabel("Language").selectOption("de");
    await page.getByRole("button", { name: "Abholtheke" }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), "de");
    await page.getByLabel("Sprache").selectOption("fr");
    await page.getByRole("button", { name: "Retraits" }).waitFor();
    noTokenInUrls(s, [ADMIN]);
  } finally {
    await s.cleanup();
  }
});

/** A TCP proxy on loopback that can be cut (every connection dropped, new ones refused) and restored. */
async function cuttableProxy(target) {
  const { createServer, connect } = await import("node:net");
  const to = new URL(target);
  const sockets = new Set();
  let down = false;
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(Number(to.port), to.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** `shelfcast edge` for berlin, following `hubUrl`, with the staff token for its own devices. */
async function startEdge(hubUrl) {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  const data = scratch("shelfcast-e2e-edge-");
  const args = ["edge", "--location", "berlin", "--hub", hubUrl, "--token", STAFF, "--device-token", `${STAFF}=berlin`,
    "--listen", "127.0.0.1:0", "--data", data, "--report-every", "200ms", "--follow-every", "100ms"];
  const child = spawn(join(repo, "target", "release", "shelfcast"), args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SHELFCAST_LOG: "error" } });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`edge exited with ${code}`)));
  });
  return {
    url: line.replace("listening on ", "").trim(),
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await done;
    },
  };
}

test("an edge cut off from its hub still serves its desk and says offline with events pending; the hub's Stores page shows it offline", async () => {
  const s = await setup();
  const proxy = await cuttableProxy(s.hub.url);
  const edge = await startEdge(proxy.url);
  try {
    const { body } = await reserve(s.hub, "E2E-1", "berlin", 1);
    const store = await s.context.newPage();
    await store.goto(`${edge.url}/console/`);
    await store.getByLabel("Token").fill(STAFF);
    await store.getByRole("button", { name: "Sign in" }).click();
    await store.locator(`li.pickup[data-id="${body.id}"]`).waitFor();

    const office = await (await chromium.newContext()).newPage();
    await office.goto(`${s.hub.url}/console/`);
    await office.getByLabel("Token").fill(ADMIN);
    await office.getByRole("button", { name: "Sign in" }).click();
    await office.getByRole("button", { name: "Stores" }).click();
    const berlin = office.locator('tr.store[data-location="berlin"]');
    await until(async () => (await berlin.locator(".state").textContent().catch(() => "")) === "Online", "the hub to show the edge online");

    proxy.cut();
    const sales = [1, 2].map((i) => ({ id: `offline-${i}-${Date.now()}`, type: "sale", sku: "E2E-2", location: "berlin", qty: 1 }));
    const r = await fetch(`${edge.url}/v1/events`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${STAFF}` }, body: JSON.stringify(sales) });
    assert.equal(r.status, 200, "the till keeps selling at the edge");
    await until(async () => (await berlin.locator(".state").textContent().catch(() => "")) === "Offline", "the hub to show the edge offline");
    await shoot(office, "stores");

    await store.reload();
    await store.locator(`li.pickup[data-id="${body.id}"]`).waitFor();
    await store.getByRole("button", { name: "Stores" }).click();
    const own = store.locator('tr.store[data-location="berlin"]');
    await until(async () => (await own.locator(".state").textContent().catch(() => "")) === "Offline", "the edge to say it is offline");
    await until(async () => (await own.locator(".pending").textContent().catch(() => "")) === "2", "the events pending at the store");
    await store.getByRole("button", { name: "Pickup desk" }).click();
    const row = store.locator(`li.pickup[data-id="${body.id}"]`);
    await row.getByRole("button", { name: "Hand over 1 × E2E-1" }).click();
    await store.getByRole("status").getByText("The hub cannot be reached").waitFor();
    assert.equal((await availability(s.hub, "E2E-1", "berlin")).reserved, 1, "nothing changed at the hub");

    proxy.restore();
    await until(async () => (await berlin.locator(".state").textContent().catch(() => "")) === "Online", "the hub to show the edge online again");
    await until(async () => (await availability(s.hub, "E2E-2", "berlin")).on_hand === 7, "the store's sales at the hub, once each");
    await office.context().close();
  } finally {
    await edge.stop();
    await proxy.close();
    await s.cleanup();
  }
});

test("activity: events by type, the till-to-hub lag, holds per minute and open streams, live", async () => {
  const s = await setup();
  try {
    const page = await signIn(s);
    await page.getByRole("button", { name: "Activity" }).click();
    await page.getByRole("heading", { name: "Activity" }).waitFor();
    const at = new Date(Date.now() - 1500).toISOString();
    await postEvents(s.hub, [1, 2, 3].map(() => ({ ...event("sale", "E2E-2", "berlin", 1), at })).concat([event("receipt", "E2E-2", "berlin", 4)]));
    await reserve(s.hub, "E2E-1", "berlin", 1);
    await reserve(s.hub, "E2E-1", "berlin", 1);
    const stream = new AbortController();
    const open = await fetch(`${s.hub.url}/v1/stream?sku=E2E-1&location=berlin`, { signal: stream.signal });
    assert.equal(open.status, 200);
    const legend = page.locator(".legend");
    // The receipts of setup() count too: 3 of them.
    await until(async () => /sale: 3 \/ min/.test(await legend.textContent()) && /receipt: 4 \/ min/.test(await legend.textContent()), "the events by type");
    const lag = await until(async () => {
      const m = /average (\d+) ms/.exec(await page.locator(".lag-summary").textContent());
      return m && Number(m[1]) >= 1500 && Number(m[1]);
    }, "the lag of the events that said when they happened");
    assert.ok(lag < 60_000, `lag ${lag} ms`);
    await until(async () => (await page.locator(".holds-summary").textContent()).trim().endsWith("2"), "two holds this minute");
    await until(async () => (await page.locator(".streams-summary").textContent()).trim() === "1", "the open stream");
    assert.ok((await page.locator("svg.chart rect.k0").count()) > 0, "sales drawn");
    await shoot(page, "activity");
    stream.abort();
    await until(async () => (await page.locator(".streams-summary").textContent()).trim() === "0", "the stream closed");
  } finally {
    await s.cleanup();
  }
});

test("keyboard alone signs in and hands over; every page passes axe-core's WCAG A and AA checks, at desktop and phone width", async () => {
  const s = await setup();
  // axe-core is injected as a script, which the console's own policy forbids: this context only.
  const context = await chromium.newContext({ bypassCSP: true });
  try {
    const page = await context.newPage();
    await page.goto(`${s.hub.url}/console/`);
    await page.getByLabel("Token").waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "token", "Tab reaches the token field first");
    await page.keyboard.type(STAFF);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: /Pickup desk/ }).waitFor();
    const { body } = await reserve(s.hub, "E2E-1", "berlin", 1);
    const row = page.locator(`li.pickup[data-id="${body.id}"]`);
    await row.waitFor();
    const handOver = row.getByRole("button", { name: "Hand over 1 × E2E-1" });
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await handOver.evaluate((b) => b === document.activeElement);
    }
    assert.ok(reached, "Tab reaches Hand over");
    await page.keyboard.press("Enter");
    await row.waitFor({ state: "detached" });

    const { createRequire } = await import("node:module");
    const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
    const violations = async () => {
      if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE });
      const result = await page.evaluate(() =>
        window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }),
      );
      return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    };
    await reserve(s.hub, "E2E-1", "berlin", 1);
    await page.locator("li.pickup").first().waitFor();
    for (const [tab, ready] of [["Pickup desk", "li.pickup"], ["Stock look-up", "form.lookup"], ["Oversold", "h2"], ["Stores", "table.stores"], ["Activity", "svg.chart"]]) {
      await page.getByRole("button", { name: tab, exact: true }).click();
      await page.locator(ready).first().waitFor({ state: "attached" });
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 844 });
        assert.deepEqual(await violations(), [], `${tab} at ${width} px`);
      }
    }
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Token").waitFor();
    assert.deepEqual(await violations(), [], "sign-in");
  } finally {
    await context.close();
    await s.cleanup();
  }
});
