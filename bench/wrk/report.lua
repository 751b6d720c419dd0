-- Shared by the workload scripts: at the end of a run, print one line,
-- "BENCH_RESULT {json}", that bench/loadgen.py parses. wrk's own
-- human-readable summary (with --latency) is printed above it as usual.
local report = {}

function report.done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, '
      .. '"errors": {"connect": %.0f, "read": %.0f, "write": %.0f, '
      .. '"status": %.0f, "timeout": %.0f}, '
      .. '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %.0f, '
      .. '"p50": %.0f, "p90": %.0f, "p99": %.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end

return report
