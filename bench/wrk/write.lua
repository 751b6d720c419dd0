-- Write workload: cycles over keys k0..k<N-1> under the URL's path, which
-- must end with "/". Arguments after "--": method, encoding, key count,
-- value size in bytes. Encoding "raw" sends the value as the body (badkv,
-- bare app); "form" sends "value=<value>" form-encoded (etcd's v2 API).
-- Each thread starts at a different key, and all requests are built once
-- in init() so that wrk spends as little CPU per request as possible.
local report = require("report")
local auth_headers = require("headers")

local thread_count = 0
local requests = {}
local next_index = 1

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local method = args[1] or "POST"
  local encoding = args[2] or "raw"
  local key_count = tonumber(args[3] or "10000")
  local value_bytes = tonumber(args[4] or "100")
  local value = string.rep("v", value_bytes)
  local body = value
  local headers = auth_headers.add({["Content-Type"] = "application/octet-stream"})
  if encoding == "form" then
    body = "value=" .. value
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  for i = 0, key_count - 1 do
    requests[i + 1] = wrk.format(method, wrk.path .. "k" .. i, headers, body)
  end
  local id = thread_id or 0
  next_index = (id * 7919) % key_count + 1
end

function request()
  local req = requests[next_index]
  next_index = next_index % #requests + 1
  return req
end

done = report.done
