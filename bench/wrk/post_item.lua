-- POST /items: a new item with a name no other request of the run (or earlier run) uses.
local prefix = os.getenv("BENCH_PREFIX") or tostring(os.time())
local threads = 0
local thread_id = 0
local sequence = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_id", threads)
end

function request()
   sequence = sequence + 1
   local body = string.format(
      '{"name":"%s-%d-%d","price_cents":%d,"stock":10}',
      prefix, thread_id, sequence, sequence % 100000)
   return wrk.format("POST", "/items", {["Content-Type"] = "application/json"}, body)
end
