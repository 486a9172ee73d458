// A purge storm while the edges serve: purge API latency, and whether any
// read right after a completed purge still returns the purged version.
//   k6 run -e EDGES=http://127.0.0.1:8080,http://127.0.0.1:8082,http://127.0.0.1:8083 \
//          -e COORDINATOR=http://127.0.0.1:8470 -e ORIGIN=http://127.0.0.1:8081 \
//          -e TOKEN=demo-token loadtest/k6/purge_storm.js
// Needs the demo origin (tools/demo-origin.py): pages show "version N".
import http from "k6/http";
import { check } from "k6";
import { Rate, Trend } from "k6/metrics";

const edges = (__ENV.EDGES || "http://127.0.0.1:8080").split(",");
const coordinator = __ENV.COORDINATOR || "http://127.0.0.1:8470";
const origin = __ENV.ORIGIN || "http://127.0.0.1:8081";
const token = __ENV.TOKEN || "demo-token";
const purgeLatency = new Trend("purge_api_latency", true);
const staleReads = new Rate("stale_reads_after_purge");
const complete = new Rate("purges_complete");

export const options = {
  scenarios: {
    readers: {
      executor: "constant-arrival-rate", exec: "read", rate: Number(__ENV.READ_RATE || 300),
      timeUnit: "1s", duration: __ENV.DURATION || "60s", preAllocatedVUs: 30, maxVUs: 100,
    },
    purgers: {
      executor: "constant-arrival-rate", exec: "purge", rate: Number(__ENV.PURGE_RATE || 20),
      timeUnit: "1s", duration: __ENV.DURATION || "60s", preAllocatedVUs: 10, maxVUs: 50,
    },
  },
  thresholds: {
    stale_reads_after_purge: ["rate==0"],     // Guarantee 1
    purges_complete: ["rate>0.99"],
    purge_api_latency: ["p(99)<50"],
    http_req_failed: ["rate<0.01"],
  },
};

function version(body) {
  const m = /version (\d+)/.exec(body || "");
  return m ? Number(m[1]) : -1;
}

export function read() {
  const edge = edges[Math.floor(Math.random() * edges.length)];
  http.get(`${edge}/products/${1 + Math.floor(Math.random() * 20)}`);
}

export function purge() {
  const n = 1 + Math.floor(Math.random() * 20);
  const bumped = http.post(`${origin}/admin/bump?tag=product-${n}`);
  check(bumped, { "origin bumped": (r) => r.status === 200 });
  const expected = version(http.get(`${origin}/products/${n}`).body);
  const res = http.post(`${coordinator}/v1/purge`,
    JSON.stringify({ tags: [`product-${n}`], wait: "all", mode: Math.random() < 0.5 ? "soft" : "hard" }),
    { headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });
  purgeLatency.add(res.timings.duration);
  const done = res.status === 200 && res.json("state") === "complete";
  complete.add(done);
  if (!done) return;
  for (const e of edges) staleReads.add(version(http.get(`${e}/products/${n}`).body) < expected);
}
