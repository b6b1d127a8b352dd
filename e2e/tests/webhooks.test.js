// Webhooks as a Node receiver meets them: the `standardwebhooks` npm package verifies every
// delivery of a real hub, over real HTTP on loopback (docs/integrations.md shows the same code).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { startHub, postEvents, event, hubFetch, until } from "./harness.js";

const ADMIN = "e2e-admin";

test("a Node receiver verifies each delivery with the standardwebhooks package", async () => {
  const got = [];
  let verifier;
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      try {
        got.push({ id: req.headers["webhook-id"], payload: verifier.verify(body, req.headers) });
        res.writeHead(204).end();
      } catch (e) {
        got.push({ error: String(e) });
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const hub = await startHub({ extra: ["--admin-token", ADMIN, "--allow-private-webhooks"] });
  try {
    const r = await hubFetch(hub, "/admin/webhooks", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ url: `http://127.0.0.1:${receiver.address().port}/`, events: ["position.back_in_stock", "position.out_of_stock"] }),
    });
    assert.equal(r.status, 201);
    const { secret } = await r.json();
    verifier = new Webhook(secret);
    await postEvents(hub, [event("receipt", "HOOK-1", "berlin", 1)]);
    await postEvents(hub, [event("sale", "HOOK-1", "berlin", 1)]);
    await until(async () => got.length >= 2, "two deliveries");
    assert.deepEqual(got.filter((g) => g.error), [], "every signature verifies");
    assert.deepEqual(got.map((g) => g.payload.type), ["position.back_in_stock", "position.out_of_stock"], "in the order of the changes");
    assert.equal(got[1].payload.data.available, 0);
  } finally {
    await hub.stop();
    receiver.close();
  }
});
