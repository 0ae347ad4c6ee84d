-- GET /items/{id}: a random one of the seeded items (BENCH_ITEMS of them).
local items = tonumber(os.getenv("BENCH_ITEMS") or "10000")
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
end

function init(args)
   math.randomseed(os.time() * 100 + (seed or 0))
end

function request()
   return wrk.format("GET", "/items/" .. math.random(1, items))
end
