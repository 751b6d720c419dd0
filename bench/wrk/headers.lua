-- Shared by the workload scripts: the Authorization header for an auth-on
-- node. bench/loadgen.py passes it in the environment variable
-- BENCH_AUTHORIZATION (not as a script argument, so the token stays out of
-- wrk's command line); unset or empty means no header.
local headers = {}

function headers.add(into)
  local authorization = os.getenv("BENCH_AUTHORIZATION")
  if authorization and authorization ~= "" then
    into["Authorization"] = authorization
  end
  return into
end

return headers
