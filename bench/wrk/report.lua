-- Appended to every benchmark script.

-- With BENCH_OPEN_MS, each connection's first request waits that long, so the server has
-- accepted every connection before the load starts: libuv (uvloop) accepts one connection per
-- event-loop iteration, and a burst of new connections against a busy loop would otherwise
-- put the loop's iteration time, once per connection, into the first requests' latency.
local open_ms = tonumber(os.getenv("BENCH_OPEN_MS") or "0")
local first_requests = tonumber(os.getenv("BENCH_CONNECTIONS_PER_THREAD") or "0")
if open_ms > 0 then
   function delay()
      if first_requests > 0 then
         first_requests = first_requests - 1
         return open_ms
      end
      return 0
   end
end

-- One machine-readable line with the run's figures.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
