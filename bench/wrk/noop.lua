-- GET of the reference's view without database (the floor), with the same headers.
dofile((os.getenv("WRK_DIR") or "bench/wrk") .. "/common.lua")

function request()
  return wrk.format("GET", "/noop/", headers)
end
