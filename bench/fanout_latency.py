"""Change -> stream latency: a stream client on one replica, a writer on another (or the same).
Each round posts one event and times until the stream shows it. Prints p50/p99/max in ms.
  python3 bench/fanout_latency.py STREAM_URL WRITE_URL TOKEN ROUNDS
"""
import http.client, json, sys, time, urllib.parse, urllib.request

stream_url, write_url, token, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sku = "FANOUT-%d" % int(time.time() * 1000)
u = urllib.parse.urlparse(stream_url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
conn.request("GET", "/v1/stream?sku=%s&location=bench" % sku, headers={"Accept": "text/event-stream"})
resp = conn.getresponse()

def next_on_hand():
    while True:
        line = resp.readline().decode()
        if line.startswith("data: "):
            return json.loads(line[6:])["on_hand"]

next_on_hand()  # the first state
lat = []
for i in range(rounds):
    body = json.dumps([{"id": "%s-%d" % (sku, i), "type": "receipt", "sku": sku, "location": "bench", "qty": 1}]).encode()
    req = urllib.request.Request(write_url + "/v1/events", data=body,
                                 headers={"content-type": "application/json", "authorization": "Bearer " + token})
    t0 = time.perf_counter()
    urllib.request.urlopen(req).read()
    while next_on_hand() != i + 1:
        pass
    lat.append((time.perf_counter() - t0) * 1000)
    if (i + 1) % 50 == 0:
        print("  %d/%d changes timed" % (i + 1, rounds), file=sys.stderr)
lat.sort()
pick = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
print("%.2f %.2f %.2f" % (pick(0.5), pick(0.99), lat[-1]))
