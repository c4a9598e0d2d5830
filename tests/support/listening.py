"""What a TCP port listens on, read from the kernel's socket tables (/proc/net/tcp and
tcp6), so a test can tell 127.0.0.1 from every interface without sending traffic to any
address but loopback."""

from __future__ import annotations

import ipaddress
from pathlib import Path

__all__ = ["listening_on"]

_LISTEN = "0A"   # TCP_LISTEN in include/net/tcp_states.h


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # the kernel prints each 32-bit word in host order (little-endian here)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_on(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (``0.0.0.0`` or ``::`` for
    every interface)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].split(":")
            if fields[3] == _LISTEN and int(hex_port, 16) == port:
                found.add(_address(addr))
    return found
