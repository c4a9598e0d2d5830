"""The compiled scanner under AddressSanitizer and UndefinedBehaviorSanitizer: built
from collectors/logs/_scan.c with both, loaded in a child process in place of the
normal build, and run over clean and randomly damaged lines of every template, of
JSON, of HAProxy and of Envoy.  Any out-of-bounds read or write, use after free or undefined behaviour ends the
child with the sanitizer's report; the readings are checked against the strict parsers
as in test_logs_fastpath.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.collectors.test_logs_json import LEFT

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("collectors.logs._scan", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["collectors.logs._scan"] = module
from pathlib import Path
from collectors.logs.formats import (COMPILED, ENVOY, HAPROXY, INGRESS_TEMPLATE, NGINX, JsonFormat,
                                     compile_nginx_template)
from slo.planfile import parse_plan
from tests.collectors import test_logs_fastpath as t
assert COMPILED
plan = parse_plan(Path("plans/nanopore.yaml").read_text(), source="plan")
templates = ["nginx", INGRESS_TEMPLATE,
             '$remote_addr [$time_iso8601] "$request_method $request_uri" $status '
             '$bytes_sent $upstream_response_time $upstream_addr',
             "$msec $uri $status $request_time $upstream_addr"]
n = 0
for seed in (1, 2):
    for tpl in templates:
        fmt = NGINX if tpl == "nginx" else compile_nginx_template(tpl)
        good = [t._template_line(tpl, r).encode() for r in t.requests(150, seed=seed)]
        lines = good + t._mutants(good, 1500, seed=seed * 7 + len(tpl))
        t._same_lines(plan, fmt, b"\\n".join(lines))
        n += len(lines)
    for fmt, write in ((JsonFormat(), t.json_line), (HAPROXY, t.haproxy), (ENVOY, t.envoy)):
        good = [write(r).encode() for r in t.requests(150, seed=seed)]
        lines = good + t._mutants(good, 1500, seed=seed)
        t._same_lines(plan, fmt, b"\\n".join(lines))
        n += len(lines)
    # JSON as it comes (escapes, UTF-8, nulls), clean and damaged
    from tests.collectors import test_logs_json as tj
    good = tj._as_they_come(150) + tj.LEFT
    lines = good + t._mutants(good, 1500, seed=seed + 40)
    t._same_lines(plan, JsonFormat(), b"\\n".join(lines))
    n += len(lines)
print("ok", n)
"""


def _runtime(name: str) -> str | None:
    found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                           text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_the_scanner_is_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc has no sanitizer runtimes here")
    built = tmp_path / "_scan_sanitized.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                    f"-I{sysconfig.get_paths()['include']}", "collectors/logs/_scan.c",
                    "-o", str(built)], cwd=ROOT, check=True)
    env = {**os.environ, "LD_PRELOAD": f"{asan} {ubsan}", "ASAN_OPTIONS": "detect_leaks=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1", "PYTHONPATH": str(ROOT)}
    # sys.executable is the interpreter itself (in a virtualenv, its link to it), never a
    # wrapper script, so the runtimes load first; its realpath would lose the virtualenv
    run = subprocess.run([sys.executable, "-c", CHILD, str(built)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report = run.stderr[-4000:]
    assert run.returncode == 0, report
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr, report
    per_seed = 7 * 1650 + 1650 + len(LEFT)
    assert run.stdout.startswith("ok ") and int(run.stdout.split()[1]) == 2 * per_seed


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_the_scanner_compiles_without_a_warning() -> None:
    run = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                          "-Wno-unused-parameter", f"-I{sysconfig.get_paths()['include']}",
                          "collectors/logs/_scan.c"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
