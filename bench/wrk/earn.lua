-- POST /api/v1/purchases/: a random member of the sample, a unique purchase reference and
-- Idempotency-Key per request, amounts 1 to 200.
dofile((os.getenv("WRK_DIR") or "bench/wrk") .. "/common.lua")

function request()
  counter = counter + 1
  local ref = string.format("%s-%d-%d", run, thread_number or 0, counter)
  local amount = math.random(200)
  local body = string.format(
    '{"member": "%s", "external_id": "%s", "amount": "%d.00", "currency": "EUR", ' ..
    '"store": "S1", "lines": [{"sku": "SKU1", "category": "c", "quantity": 1, ' ..
    '"amount": "%d.00"}]}', member(), ref, amount, amount)
  headers["Idempotency-Key"] = ref
  return wrk.format("POST", "/api/v1/purchases/", headers, body)
end
