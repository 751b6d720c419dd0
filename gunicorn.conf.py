# Gunicorn configuration for badkv:
#   BADKV_NAME=badkv1 BADKV_LISTEN=127.0.0.1:10001 gunicorn -c gunicorn.conf.py 'badkv.app:create_app()'
# Every setting comes from the BADKV_* environment through badkv.serving, the same
# source the `badkv` command uses, so both ways of starting a node agree.
from badkv.http import serving

_settings = serving.gunicorn_settings(serving.config_from_environment())

# Server socket
bind = _settings["bind"]

# Worker processes: one worker holds the data; threads serve requests.
workers = _settings["workers"]
worker_class = _settings["worker_class"]
threads = _settings["threads"]
worker_connections = _settings["worker_connections"]  # parked watches count; capped by ulimit -n at start
keepalive = _settings["keepalive"]
timeout = _settings["timeout"]
graceful_timeout = _settings["graceful_timeout"]

# TLS (with -cert-file, -key-file and -ca-file): HTTPS, client certificates requested, verified against the CA.
if "certfile" in _settings:
    certfile = _settings["certfile"]
    keyfile = _settings["keyfile"]
    ca_certs = _settings["ca_certs"]
    cert_reqs = _settings["cert_reqs"]
    ssl_context = _settings["ssl_context"]

# Logging and process naming
loglevel = _settings["loglevel"]
logger_class = _settings["logger_class"]  # gunicorn's own lines in BADKV_LOG_FORMAT (text or json)
proc_name = _settings["proc_name"]

# Server hooks: start the node's threads after fork, stop them on exit.
post_worker_init = _settings["post_worker_init"]
worker_exit = _settings["worker_exit"]
