"""Setting values from text: addresses, member lists, booleans, durations and sizes.

Each parser takes what a user typed (a flag or a ``BADKV_*`` variable) and
returns the value, or raises ConfigError with a sentence a user understands.
``badkv/config.py`` names them in its ``OPTIONS``; nothing here knows a setting.
"""

from __future__ import annotations

import re

from badkv.errors import ConfigError

DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """Split ``host:port``; raise ConfigError with a sentence a user understands."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{what} {text!r} is not of the form host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{what} {text!r} has a port outside 1-65535")
    return host.strip("[]"), port


def parse_cluster(text: str) -> tuple[tuple[str, str], ...]:
    """Parse ``n1=host:port,n2=host:port`` into ordered (name, address) pairs."""
    members = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, address = part.partition("=")
        if not sep:
            raise ConfigError(f"cluster member {part!r} is not of the form name=host:port")
        parse_address(address, f"cluster member {name!r} address")
        members.append((name.strip(), address.strip()))
    return tuple(members)


def parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{text!r} is not a boolean (use true or false)")


def parse_duration(text: str) -> float:
    """Seconds, from a plain number of seconds (``90``, ``1.5``) or a Go-style duration (``24h``, ``1h30m``,
    ``500ms``)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ConfigError(f"{text!r} is not a duration (seconds, or e.g. 24h, 1h30m, 90s, 500ms)")
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


def parse_size(text: str) -> int:
    """Bytes, from a plain number or one with a k, m or g suffix (``512k``, ``1MiB``, ``64kb``)."""
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in SIZE_UNITS:
        return int(float(text[:-1]) * SIZE_UNITS[text[-1]])
    return int(text)
