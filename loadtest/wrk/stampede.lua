-- wrk script: every connection asks for the same few cold objects
-- (after a purge-all), to measure request collapsing.
--   wrk -t2 -c200 -d5s -s loadtest/wrk/stampede.lua http://127.0.0.1:8080
local objects = tonumber(os.getenv("OBJECTS") or "10")
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", "/products/" .. (n % objects + 1))
end
