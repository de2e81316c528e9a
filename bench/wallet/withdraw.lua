-- wrk script: POST /v1/withdrawals for users drawn uniformly from 1..BENCH_USERS (so per-account
-- row locks do not serialize the run), each with its own Idempotency-Key, as clients in production send.
local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
local counter = 0
local thread_ids = 0

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("thread_id", thread_ids)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"user_id": %d, "to_address": "%s", "amount": "0.000001", "chain": "eth"}',
    math.random(1, users), address)
  return wrk.format("POST", "/v1/withdrawals", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d-%d", run_id, thread_id or 0, counter),
  }, body)
end
