-- Read workload: every request is a GET of the one key named by wrk's URL.
-- No request() function, so wrk sends its prebuilt request at full speed;
-- init() only adds the Authorization header (if any) to that request.
local report = require("report")
local headers = require("headers")

function init(args)
  headers.add(wrk.headers)
end

done = report.done
