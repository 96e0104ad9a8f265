-- wrk script of bench/flood.sh: POST /api/v1/auth/login with a wrong
-- password, over and over, and count the answers by status (401: bcrypt
-- ran and said no; 503: shed, no hashing slot within
-- password.hash_queue_timeout).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"flood@example.com","password":"not the password"}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  c401, c503, other = 0, 0, 0
end

function response(status, headers, body)
  if status == 401 then
    c401 = c401 + 1
  elseif status == 503 then
    c503 = c503 + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c401")
    b = b + t:get("c503")
    c = c + t:get("other")
  end
  io.write(string.format("flood answers: %d 401 (bcrypt ran), %d 503 (shed), %d other\n", a, b, c))
end
