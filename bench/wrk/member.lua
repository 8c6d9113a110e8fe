-- GET /api/v1/members/{id}/ of a random member of the sample.
dofile((os.getenv("WRK_DIR") or "bench/wrk") .. "/common.lua")

function request()
  return wrk.format("GET", "/api/v1/members/" .. member() .. "/", headers)
end
