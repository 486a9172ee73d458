// Origin stampede after a purge-all: many clients ask for the same cold
// objects at once; request collapsing must keep the origin's load at about
// one request per object per edge.
//   k6 run -e EDGES=... -e COORDINATOR=... -e ORIGIN=... -e TOKEN=... loadtest/k6/stampede.js
import http from "k6/http";
import { check } from "k6";
import { Counter } from "k6/metrics";

const edges = (__ENV.EDGES || "http://127.0.0.1:8080").split(",");
const coordinator = __ENV.COORDINATOR || "http://127.0.0.1:8470";
const origin = __ENV.ORIGIN || "http://127.0.0.1:8081";
const token = __ENV.TOKEN || "demo-token";
const OBJECTS = 10;
const originRequests = new Counter("origin_requests_per_object_per_edge");

export const options = {
  scenarios: {
    stampede: { executor: "shared-iterations", vus: 200, iterations: 4000, maxDuration: "60s" },
  },
  thresholds: {
    http_req_failed: ["rate<0.001"],
    origin_requests_per_object_per_edge: ["count<=2"],
  },
};

function originCount() {
  const s = http.get(`${origin}/admin/stats`).json();
  return (s["200"] || 0) + (s["304"] || 0);
}

export function setup() {
  for (const e of edges) for (let i = 1; i <= OBJECTS; i++) http.get(`${e}/products/${i}`);
  const res = http.post(`${coordinator}/v1/purge`, JSON.stringify({ purge_everything: true, wait: "all" }),
    { headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });
  check(res, { "purge-all complete": (r) => r.status === 200 });
  return { before: originCount() };
}

export default function () {
  const edge = edges[__ITER % edges.length];
  http.get(`${edge}/products/${1 + (__ITER % OBJECTS)}`);
}

export function teardown(data) {
  originRequests.add((originCount() - data.before) / (OBJECTS * edges.length));
}
