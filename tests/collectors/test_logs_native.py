"""The compiled scanner's interface: its constants come from the module, its results
have named fields, and a machine without a C compiler still installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collectors.logs import formats, native
from collectors.logs.limits import MAX_LINE

ROOT = Path(__file__).resolve().parents[2]


def require_compiled():  # type: ignore[no-untyped-def]
    if native.scan is None:   # under CI a skip fails (tests/support/strict.py)
        pytest.skip("the compiled scanner is not built")
    return native.scan


def test_every_op_the_formats_name_is_exported_and_the_limit_agrees() -> None:
    scan = require_compiled()
    names = {*formats._OPS.values(), "LIT", "SKIP", "HAPROXY", "ENVOY"}
    codes = {name: getattr(scan, f"OP_{name}") for name in names}
    assert len(set(codes.values())) == len(codes)   # no two names share a code
    assert scan.MAX_LINE == MAX_LINE
    assert native.ops([("HAPROXY", -1, b"")]) == ((scan.OP_HAPROXY, -1, b""),)
    assert formats.HAPROXY._spec.ops == ((scan.OP_HAPROXY, -1, b""),)


def test_results_are_read_by_name() -> None:
    scan = require_compiled()
    line = (b'10.0.0.1 - - [26/Nov/2026:12:00:01 +0000] "GET /api/files/7 HTTP/1.1" 200 512 '
            b'"-" "curl" 0.042 "10.1.2.3:8000"')
    raw = scan.scan_template(line + b"\n" + line, formats.NGINX._spec.ops, None)
    assert raw.lines == 2 and raw.routes == 0
    assert np.frombuffer(raw.status, dtype=np.float64).tolist() == [200.0, 200.0]
    assert raw.path_values == [b"/api/files/7"] or raw.path_values == ["/api/files/7"]
    assert type(raw).__name__ == "Scanned" and len(raw) == 15
    i8, f8 = np.int64, np.float64
    rolled = scan.rollup(np.zeros(2, i8), np.array([5, 5], i8), np.array([200.0, 503.0]),
                         np.array([1.0, 2.0]), np.array([10.0, 20.0], f8),
                         *formats_bucket_params())
    assert np.frombuffer(rolled.requests, dtype=i8).tolist() == [2]
    assert np.frombuffer(rolled.errors, dtype=i8).tolist() == [1]
    assert type(rolled).__name__ == "Rolled"


def formats_bucket_params() -> tuple[float, ...]:
    from slo.sketch import BUCKET_PARAMS
    return tuple(BUCKET_PARAMS)


def test_without_a_compiler_the_build_goes_on(tmp_path: Path) -> None:
    """setup.py marks the extension optional: a failing compiler is a warning."""
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    (tmp_path / "collectors" / "logs").mkdir(parents=True)
    shutil.copy(ROOT / "collectors" / "logs" / "_scan.c", tmp_path / "collectors" / "logs")
    done = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "CC": "/bin/false",
                               "LDSHARED": "/bin/false"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collectors.logs._scan" in done.stdout + done.stderr
    assert not list((tmp_path / "collectors" / "logs").glob("_scan*.so"))
