"""docs/nginx.conf is a configuration Debian's nginx accepts (``nginx -t``); it is not run against a cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from badkv.testing.programs import find_or_install

SHIPPED = Path(__file__).resolve().parents[1] / "docs" / "nginx.conf"


@pytest.fixture
def nginx():
    program, reason = find_or_install("nginx")
    if program is None:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    return program


def nginx_check(program: str, config: Path, prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run([program, "-t", "-q", "-p", f"{prefix}/", "-c", str(config)], capture_output=True,
                          text=True, timeout=30)


def test_the_shipped_nginx_conf_passes_nginx_t(nginx, tmp_path):
    checked = nginx_check(nginx, SHIPPED, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_nginx_t_fails_on_a_broken_copy(nginx, tmp_path):
    broken = tmp_path / "nginx.conf"
    broken.write_text(SHIPPED.read_text().replace("proxy_next_upstream error timeout;", "proxy_next_upstream sometimes;"))
    checked = nginx_check(nginx, broken, tmp_path)
    assert checked.returncode != 0 and 'invalid value "sometimes"' in checked.stderr
