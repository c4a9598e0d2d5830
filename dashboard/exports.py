"""Phase reports for download, through the ``reports`` package.

The page must work before (and without) the reports package's builder: a missing one
is reported in words, not as a traceback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from slo.plan import Plan

__all__ = ["FORMATS", "ReportUnavailable", "build"]

#: format -> (label, file extension, MIME type)
FORMATS = {"html": ("HTML", "html", "text/html"),
           "pdf": ("PDF", "pdf", "application/pdf"),
           "md": ("Markdown", "md", "text/markdown"),
           "csv": ("CSV", "csv", "text/csv"),
    "json": ("JSON", "json", "application/json")}


class ReportUnavailable(Exception):
    """This installation cannot build reports (the builder is missing)."""


def build(*, engine: Engine, plan: Plan, phase_id: str, fmt: str, at: datetime) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"expected a format in {', '.join(FORMATS)}, got {fmt!r}")
    try:
        from reports import build_report, render
    except ImportError as e:
        raise ReportUnavailable(
            f"this installation has no report builder (reports.build_report / "
            f"reports.render: {e}); use `cutover report` once it is installed") from None
    report = build_report(engine=engine, plan=plan, phase_id=phase_id, at=at)
    payload = render(report, fmt)
    return payload if isinstance(payload, bytes) else str(payload).encode()
