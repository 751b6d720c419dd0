"""System programs a test needs (haproxy, nginx): found on PATH, or installed with apt when root.

A fresh CI machine gets them from ``.ci/run``; on a developer's machine the test
installs the Debian package itself when it can, and otherwise skips with the
reason this module returns, so "not tested" is always said out loud.
"""

from __future__ import annotations

import os
import shutil
import subprocess

APT_SECONDS = 300


def find_or_install(program: str, package: str | None = None) -> tuple[str | None, str]:
    """(path, "") when ``program`` is on PATH or apt installed ``package`` just now; else (None, why not)."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found:
        return found, ""
    package = package or program
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"{program} is not installed and cannot be (needs root and apt-get): apt-get install {package}"
    try:
        done = subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True, text=True,
                              timeout=APT_SECONDS, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    except subprocess.TimeoutExpired:
        return None, f"apt-get install {package} took over {APT_SECONDS} s"
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if found:
        return found, ""
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return None, f"apt-get install {package} failed (exit {done.returncode}): {last[0]}"
