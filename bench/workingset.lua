-- wrk script for bench/disk_bench.sh: requests /16k.bin?i=N over a working
-- set of OBJECTS distinct objects.
--   MODE=fill     objects in order (0, 1, 2, ... wrapping at OBJECTS): each
--                 a miss until the set is stored; KEY names the query
--                 parameter (default i; the fill measurement uses a key
--                 space of its own)
--   MODE=uniform  random objects, every one alike
--   MODE=zipf     random objects, Zipf-distributed (exponent ZIPF_S, default
--                 0.99; object 0 the most popular)
-- Counts responses that are not 200 and, per Cache-Status, hits.
local objects = tonumber(os.getenv("OBJECTS") or "50000")
local mode = os.getenv("MODE") or "uniform"
local zipf_s = tonumber(os.getenv("ZIPF_S") or "0.99")
local key = os.getenv("KEY") or "i"
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local cdf
local function build_cdf()
  cdf = {}
  local sum = 0
  for k = 1, objects do
    sum = sum + 1 / (k ^ zipf_s)
    cdf[k] = sum
  end
  for k = 1, objects do cdf[k] = cdf[k] / sum end
end

local function zipf()
  local u = math.random()
  local lo, hi = 1, objects
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

function init(args)
  hits, total, bad = 0, 0, 0
  next_i = id
  step = tonumber(os.getenv("THREADS") or "1")
  math.randomseed(os.time() + id * 7919)
  if mode == "zipf" then build_cdf() end
end

function request()
  local i
  if mode == "fill" then
    i = next_i % objects
    next_i = next_i + step
  elseif mode == "zipf" then
    i = zipf()
  else
    i = math.random(0, objects - 1)
  end
  return wrk.format("GET", "/16k.bin?" .. key .. "=" .. i)
end

function response(status, headers, body)
  total = total + 1
  if status ~= 200 then bad = bad + 1 end
  local cs = headers["Cache-Status"] or headers["cache-status"] or ""
  if string.find(cs, "hit", 1, true) then hits = hits + 1 end
end

function done(summary, latency, requests)
  local h, t, b = 0, 0, 0
  for _, thread in ipairs(threads) do
    h = h + thread:get("hits")
    t = t + thread:get("total")
    b = b + thread:get("bad")
  end
  io.write(string.format("lua: responses %d not-200 %d cache-status-hit %d\n", t, b, h))
end
