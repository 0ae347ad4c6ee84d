function request() return wrk.format("GET", "/dep/items/" .. math.random(1, 10000)) end
