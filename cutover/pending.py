"""Commands whose capability has not landed yet say so plainly and exit 1."""

from __future__ import annotations

import sys


def not_yet(command: str, *, issue: str) -> int:
    print(f"cutover: `{command}` is not available yet: it arrives with the {issue} work",
          file=sys.stderr)
    return 1
