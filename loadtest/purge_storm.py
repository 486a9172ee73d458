#!/usr/bin/env python3
"""Purge storm while the edges serve (the wrk-side twin of k6/purge_storm.js).

Each purge: bump a product at the demo origin, purge its tag with wait=all,
then read it from every edge: any older version is a stale read. Prints the
purge API latency percentiles and the count of stale reads; exit 1 if any.
  purge_storm.py --coordinator 127.0.0.1:8470 --origin 127.0.0.1:8081 \
      --edges 127.0.0.1:8080,127.0.0.1:8082 --token T --seconds 10 --rate 20
"""
import argparse
import http.client
import json
import re
import sys
import threading
import time


def call(hostport, method, path, headers=None, body=None):
    h, p = hostport.split(":")
    c = http.client.HTTPConnection(h, int(p), timeout=15)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def version(body):
    m = re.search(rb"version (\d+)", body)
    return int(m.group(1)) if m else -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coordinator", required=True)
    ap.add_argument("--origin", required=True)
    ap.add_argument("--edges", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=20, help="purges per second (all workers)")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    edges = args.edges.split(",")
    lat, stale, incomplete, lock = [], [0], [0], threading.Lock()
    stop = time.time() + args.seconds

    def worker(w):
        n = w
        interval = args.workers / args.rate
        while time.time() < stop:
            t_next = time.time() + interval
            product = n % 20 + 1
            n += args.workers
            call(args.origin, "POST", f"/admin/bump?tag=product-{product}")
            expected = version(call(args.origin, "GET", f"/products/{product}")[1])
            body = json.dumps({"tags": [f"product-{product}"], "wait": "all",
                               "mode": "soft" if n % 2 else "hard"})
            t0 = time.time()
            st, data = call(args.coordinator, "POST", "/v1/purge",
                            {"Authorization": f"Bearer {args.token}",
                             "Content-Type": "application/json"}, body)
            ms = (time.time() - t0) * 1000
            done = st == 200 and json.loads(data).get("state") == "complete"
            seen = [version(call(e, "GET", f"/products/{product}")[1]) for e in edges] if done else []
            with lock:
                lat.append(ms)
                incomplete[0] += 0 if done else 1
                stale[0] += sum(1 for v in seen if v < expected)
            time.sleep(max(0, t_next - time.time()))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1) + 0.5))] if lat else 0
    print(f"purges: {len(lat)}  api latency p50 {pct(0.5):.2f} ms  p99 {pct(0.99):.2f} ms  "
          f"max {lat[-1] if lat else 0:.2f} ms  not complete {incomplete[0]}  "
          f"stale reads after a completed purge: {stale[0]}")
    return 1 if stale[0] or incomplete[0] else 0


if __name__ == "__main__":
    sys.exit(main())
