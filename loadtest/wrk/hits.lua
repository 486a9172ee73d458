-- wrk script: random demo-origin product pages, counts Cache-Status hits.
--   wrk -t2 -c32 -d30s -s loadtest/wrk/hits.lua http://127.0.0.1:8080
-- Environment: PATHS (number of /products/N pages, default 20).
local threads = {}
local paths = tonumber(os.getenv("PATHS") or "20")

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  hits, total = 0, 0
end

function request()
  return wrk.format("GET", "/products/" .. math.random(1, paths))
end

function response(status, headers, body)
  total = total + 1
  local cs = headers["Cache-Status"] or headers["cache-status"] or ""
  if string.find(cs, "hit", 1, true) then hits = hits + 1 end
end

function done(summary, latency, requests)
  local h, t = 0, 0
  for _, thread in ipairs(threads) do
    h = h + thread:get("hits")
    t = t + thread:get("total")
  end
  io.write(string.format("hit ratio: %.4f (%d of %d)\n", t > 0 and h / t or 0, h, t))
  io.write(string.format("p50 %.2f ms  p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
