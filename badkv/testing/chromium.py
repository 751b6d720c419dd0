"""Debian's headless Chromium driven over the DevTools protocol, for tests of the dashboard page.

``Browser`` starts ``/usr/bin/chromium`` in its own process group with a fresh profile directory,
connects to its page's DevTools websocket (websocket-client) and evaluates JavaScript there; ``stop``
ends that process group and removes the profile. ``ensure_chromium`` installs the ``chromium`` package
with apt when it is missing and this runs as root, and otherwise says why it cannot.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

CHROMIUM = "/usr/bin/chromium"
# Headless, no sandbox (tests run as root), and nothing that reaches outside the machine.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def ensure_chromium(timeout: float = 900.0) -> str | None:
    """None when Chromium is there (installing it with apt-get if missing and root), else the reason."""
    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)"
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
            if done.returncode != 0:
                return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"installing chromium failed: {error}"
    return None if os.path.exists(CHROMIUM) else f"apt-get installed chromium but {CHROMIUM} is missing"


class Browser:
    """One headless Chromium with one page, driven through its DevTools websocket."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self.profile = Path(tempfile.mkdtemp(prefix="badkv-chromium-"))
        self.process: subprocess.Popen | None = None
        self.socket = None
        self._ids = itertools.count(1)

    def start(self, timeout: float = 30.0) -> "Browser":
        import websocket  # (the test extra: only tests drive a browser)

        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        port = self._devtools_port(time.monotonic() + timeout)
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(target for target in targets if target["type"] == "page")
        # Chromium refuses DevTools websockets that send an Origin it does not know: send none.
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        return self

    def _devtools_port(self, deadline: float) -> int:
        """The port Chromium chose, from the DevToolsActivePort file it writes in its profile."""
        marker = self.profile / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}; see {self.log_path}")
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].isdigit():
                return int(lines[0])
            time.sleep(0.05)
        raise RuntimeError(f"chromium opened no DevTools port in time; see {self.log_path}")

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events that arrive meanwhile are skipped)."""
        call_id = next(self._ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        """Evaluate ``expression`` until it is truthy (its value is returned); fail after ``timeout``.

        An expression that throws counts as not yet: ``Page.navigate`` returns before the new document
        has loaded, so the first evaluations may still see the old one, without the page's elements."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as error:
                value = error
            else:
                if value:
                    return value
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout}s (last value {value!r})")

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.process is not None and self.process.poll() is None:
            group = self.process.pid  # its own session: the group id is its pid
            os.killpg(group, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                self.process.wait(timeout=10)
        _kill_group_leftovers(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        try:
            return self.start()
        except BaseException:
            self.stop()  # (a browser that started but did not answer is ended too)
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_group_leftovers(process: subprocess.Popen | None) -> None:
    """Chromium's helper processes (renderer, GPU, zygote) share its process group: end any left."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
