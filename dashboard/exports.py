"""Phase reports for download, built by the ``reports`` package in a child process.

Why a child: building week-4's report from six weeks of minute evaluations takes the
builder to about 240 MB resident (HTML 270 MB, PDF 300 MB, measured), and the dashboard
server's budget is 229 MB for everything.  The child takes that memory with it when it
exits; the server only ever holds the finished bytes.

The page must work before (and without) the report builder: a missing one is reported
in words (:class:`ReportUnavailable`), not as a traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from slo.errors import ReportError

__all__ = ["FORMATS", "ReportUnavailable", "build"]

log = logging.getLogger(__name__)

#: format -> (label, file extension, MIME type)
FORMATS = {"html": ("HTML", "html", "text/html"),
           "pdf": ("PDF", "pdf", "application/pdf"),
           "md": ("Markdown", "md", "text/markdown"),
           "csv": ("CSV", "csv", "text/csv"),
           "json": ("JSON", "json", "application/json")}
ROOT = Path(__file__).resolve().parent.parent
EXIT_UNAVAILABLE = 3


class ReportUnavailable(Exception):
    """This installation cannot build reports (the builder is missing)."""


def build(*, plan_path: str, db_url: str, phase_id: str, fmt: str, at: datetime,
          timeout: float = 300.0) -> bytes:
    """The report of ``phase_id`` at ``at`` in ``fmt``, built in a child process."""
    if fmt not in FORMATS:
        raise ValueError(f"expected a format in {', '.join(FORMATS)}, got {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="cutover-report-") as tmp:
        out = Path(tmp) / f"report.{FORMATS[fmt][1]}"
        env = {**os.environ, "CUTOVER_PLAN": plan_path, "CUTOVER_DB": db_url}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "dashboard.exports", phase_id, fmt, at.isoformat(),
                 str(out)], cwd=ROOT, env=env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ReportError(f"the {fmt} report of {phase_id} took longer than "
                              f"{timeout:.0f} s; try `cutover report`") from None
        said = _last_line(done.stderr)
        if done.returncode == EXIT_UNAVAILABLE:
            raise ReportUnavailable(said)
        if done.returncode != 0 or not out.exists():
            log.error("report child failed (%s): %s", done.returncode,
                      done.stderr.decode(errors="replace")[-2000:])
            raise ReportError(said or f"the report builder exited with {done.returncode}")
        return out.read_bytes()


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def main(argv: Sequence[str]) -> int:
    """The child: ``python -m dashboard.exports PHASE FORMAT AT OUT`` with the plan and
    the store named by CUTOVER_PLAN and CUTOVER_DB."""
    phase_id, fmt, at, out = argv
    try:
        from reports import build_report, render
    except ImportError as e:
        sys.stderr.write(f"this installation has no report builder ({e}); "
                         "use `cutover report` once it is installed\n")
        return EXIT_UNAVAILABLE
    from slo.planfile import parse_plan
    from store.db import make_engine

    plan_path = os.environ["CUTOVER_PLAN"]
    plan = parse_plan(Path(plan_path).read_text(encoding="utf-8"), source=plan_path)
    engine = make_engine(os.environ["CUTOVER_DB"])
    try:
        report = build_report(engine=engine, plan=plan, phase_id=phase_id,
                              at=datetime.fromisoformat(at))
        Path(out).write_bytes(render(report, fmt))
    except Exception as e:  # the parent shows this line to the operator
        log.exception("report %s (%s) failed", phase_id, fmt)
        sys.stderr.write(f"{e.__class__.__name__}: {e}\n")
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main(sys.argv[1:]))
