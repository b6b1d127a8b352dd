// A real hub (the release binary, on loopback, with its own SQLite directory), a static page
// server on another origin, and a real Chromium.
import { spawn, execFileSync } from "node:child_process";
import { createServer, get, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { mkdtempSync, readFileSync, existsSync, statSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, extname, normalize } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, "..", "..");
export const TOKEN = "e2e-till";

// SHELFCAST_BIN: another build, for an A/B of the benchmarks in bench/.
const BIN = process.env.SHELFCAST_BIN ?? join(repo, "target", "release", "shelfcast");

const scratches = [];
process.once("exit", () => scratches.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A new directory under the system's temporary one, removed when this test file's process exits. */
export function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratches.push(dir);
  return dir;
}

/** Starts `shelfcast serve`; `port` 0 picks one. With `tls` (from `certificate()`) it serves HTTPS. */
export async function startHub({ port = 0, data, origins = [], holdTtl = "15m", tls, extra = [] } = {}) {
  data ??= scratch("shelfcast-e2e-");
  const args = ["serve", "--listen", `127.0.0.1:${port}`, "--data", data, "--device-token", `${TOKEN}=*`, "--hold-ttl", holdTtl, ...extra];
  for (const o of origins) args.push("--allow-origin", o);
  if (tls) args.push("--tls-cert", tls.cert, "--tls-key", tls.key);
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, SHELFCAST_LOG: "warn" } });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`hub exited with ${code}`)));
  });
  const url = line.replace("listening on ", "").trim();
  return {
    url,
    ca: tls?.pem,
    data,
    port: Number(new URL(url).port),
    child,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      await done;
    },
  };
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with openssl in a fresh directory:
 * `{ cert, key }` paths and the certificate's `pem`, which the harness trusts for that hub.
 */
export function certificate() {
  const dir = scratch("shelfcast-e2e-tls-");
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key, pem: readFileSync(cert, "utf8") };
}

/** `fetch` for the hub, trusting its own certificate when it serves HTTPS (Node's fetch takes no CA). */
export function hubFetch(hub, path, { method = "GET", headers = {}, body } = {}) {
  if (!hub.ca) return fetch(`${hub.url}${path}`, { method, headers, body });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${hub.url}${path}`, { method, headers, ca: hub.ca }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, text: async () => text, json: async () => JSON.parse(text) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

export async function postEvents(hub, events) {
  const r = await hubFetch(hub, "/v1/events", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(events),
  });
  if (r.status !== 200) throw new Error(`ingest answered ${r.status}`);
  return r.json();
}

let seq = 0;
export function event(type, sku, location, qty) {
  return { id: `e2e-${process.pid}-${Date.now()}-${seq++}`, type, sku, location, qty };
}

export async function availability(hub, sku, location) {
  const r = await hubFetch(hub, `/v1/availability?sku=${sku}&location=${location}`);
  return (await r.json()).positions[0];
}

export async function reserve(hub, sku, location, qty = 1) {
  const r = await fetch(`${hub.url}/v1/reservations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sku, location, qty, key: `e2e-${crypto.randomUUID()}` }),
  });
  return { status: r.status, body: await r.json() };
}

/** The bytes the hub sends for `path` when the client accepts only `encoding`, undecoded. */
export function served(hub, path, encoding) {
  return new Promise((resolve, reject) => {
    get(`${hub.url}${path}`, { headers: { "accept-encoding": encoding } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, encoding: res.headers["content-encoding"] ?? "identity", body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

export async function metric(hub, name) {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : undefined;
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

/**
 * Serves `root` on its own origin; `{{HUB}}` in HTML files becomes the hub's URL. `headers(hub, url)`:
 * more response headers for HTML pages (a Content-Security-Policy, say).
 */
export async function startPages(root, hubUrl, headers = () => ({})) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    let file = join(root, path);
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    let body = readFileSync(file);
    if (file.endsWith(".html")) body = body.toString().replaceAll("{{HUB}}", hubUrl());
    const extra = file.endsWith(".html") ? headers(hubUrl(), req.url) : {};
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", ...extra }).end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, close: () => new Promise((r) => server.close(r)) };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
}

/** A free loopback port, for a hub that must come back on the same address. */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A free port for a server that stops and must start again on the same port: chosen below the
 * kernel's ephemeral range (32768 and up on Linux), so no client connection and no other
 * process listening on port 0 can be given it while the server is down.
 */
export async function stablePort() {
  for (let tries = 0; tries < 100; tries++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const s = createServer();
    const free = await new Promise((r) => {
      s.once("error", () => r(false));
      s.listen(port, "127.0.0.1", () => r(true));
    });
    if (free) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error("no free port between 20000 and 30000");
}

/** Text of the element's shadow root (Playwright pierces open shadow roots). */
export async function shadowText(page, selector) {
  return page.locator(selector).evaluate((el) => el.shadowRoot?.textContent ?? "");
}

export const pagesDir = join(here, "..", "pages");

/** Polls `fn` every 25 ms until it returns something truthy (returned), for at most `ms`. */
export async function until(fn, what, ms = 10_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/**
 * A reverse proxy that serves `target` (a plain-HTTP hub) under `prefix`, stripping it, as a
 * shop's own server would (`https://shop.example/stock/…` → the hub's `/…`); responses are
 * piped as they come, so streams stream. `paths` records each path asked for.
 */
export async function startPrefixProxy(target, prefix) {
  const to = new URL(target);
  const paths = [];
  const server = createServer((req, res) => {
    paths.push(req.url);
    if (!req.url.startsWith(`${prefix}/`)) {
      res.writeHead(404).end();
      return;
    }
    const headers = { ...req.headers, host: to.host };
    const up = httpRequest({ host: to.hostname, port: to.port, path: req.url.slice(prefix.length), method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}${prefix}`;
  return {
    url,
    paths,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}
