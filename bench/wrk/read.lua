-- Read workload: every request is a GET of the one key named by wrk's URL.
-- No request() function, so wrk sends its prebuilt request at full speed.
local report = require("report")

done = report.done
