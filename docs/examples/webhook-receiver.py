#!/usr/bin/env python3
"""A Shelfcast webhook receiver to start from.

Checks each delivery's signature with the `standardwebhooks` package (a request that fails
the check is answered 400 and not taken), takes each `webhook-id` once (a delivery can come
twice), prints one JSON line per delivery taken and answers 204 at once: do the slow work
after answering.

    pip install standardwebhooks==1.3.0
    SHELFCAST_WEBHOOK_SECRET=whsec_... python3 docs/examples/webhook-receiver.py [PORT]

Then subscribe it (a receiver on your own machine or network needs a hub started with
--allow-private-webhooks):

    curl -X POST "$HUB/admin/webhooks" -H "authorization: Bearer $ADMIN" \
      -H 'content-type: application/json' \
      -d '{"url":"http://127.0.0.1:8090/","events":["position.out_of_stock","position.back_in_stock"]}'
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

hook = Webhook(os.environ["SHELFCAST_WEBHOOK_SECRET"])
# A real receiver keeps these in its database, with what it did for each.
seen = set()
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            delivery = hook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as e:
            print(json.dumps({"rejected": str(e)}), flush=True)
            return self.answer(400)
        msg_id = self.headers["webhook-id"]
        with lock:
            fresh = msg_id not in seen
            seen.add(msg_id)
        if fresh:
            print(json.dumps({"id": msg_id, "type": delivery["type"], "data": delivery["data"]}), flush=True)
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8090
server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
server.serve_forever()
