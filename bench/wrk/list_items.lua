-- GET /items?limit=20: the first page.
function request()
   return wrk.format("GET", "/items?limit=20")
end
