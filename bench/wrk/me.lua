-- GET /auth/me, authenticated by the session cookie in BENCH_COOKIE ("name=value").
local cookie = os.getenv("BENCH_COOKIE") or ""

function request()
   return wrk.format("GET", "/auth/me", {["Cookie"] = cookie})
end
