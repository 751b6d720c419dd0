# Gunicorn settings for the baseline app, bench/bare_app.py.
# They mirror the worker settings badkv gives gunicorn (badkv/http/serving.py,
# gunicorn_settings). The worker class is stock gthread: badkv's own subclass
# of it (badkv/http/lean_worker.py) is part of what the benchmark measures.
# The harness passes this file with -c; without it gunicorn would read the
# repository's own gunicorn.conf.py, which configures a badkv node instead.
# The thread count and the bind address come from the command line.

# Worker processes: one gthread worker, keep-alive on.
workers = 1
worker_class = "gthread"
threads = 8
keepalive = 5

# Shutdown and timeouts
graceful_timeout = 2
timeout = 30

# Logging: no access log, warnings only (as badkv at its default log level).
loglevel = "warning"
proc_name = "badkv-bench-bare"
