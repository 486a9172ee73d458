// Steady hit traffic through the edges, with a hit-ratio check.
//   k6 run -e EDGES=http://127.0.0.1:8080,http://127.0.0.1:8082 loadtest/k6/hits.js
// Options: RATE (requests/s, default 500), DURATION (default 60s),
// PATHS (comma separated, default the demo origin's /products/1..20).
import http from "k6/http";
import { check } from "k6";
import { Rate } from "k6/metrics";

const edges = (__ENV.EDGES || "http://127.0.0.1:8080").split(",");
const paths = (__ENV.PATHS || Array.from({ length: 20 }, (_, i) => `/products/${i + 1}`).join(",")).split(",");
const hits = new Rate("cache_hits");

export const options = {
  scenarios: {
    hits: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 500),
      timeUnit: "1s",
      duration: __ENV.DURATION || "60s",
      preAllocatedVUs: 50,
      maxVUs: 200,
    },
  },
  thresholds: {
    cache_hits: ["rate>0.95"],               // after warm-up nearly everything is a hit
    http_req_failed: ["rate<0.001"],
    "http_req_duration{expected_response:true}": ["p(99)<20"],
  },
};

export function setup() {
  // Warm every edge once.
  for (const e of edges) for (const p of paths) http.get(e + p);
}

export default function () {
  const edge = edges[Math.floor(Math.random() * edges.length)];
  const path = paths[Math.floor(Math.random() * paths.length)];
  const res = http.get(edge + path);
  check(res, { "status 200": (r) => r.status === 200 });
  hits.add((res.headers["Cache-Status"] || "").includes("hit"));
}
