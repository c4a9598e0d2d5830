"""Phase reports built from the store: HTML, PDF, Markdown, CSV, JSON.

``build_report`` gathers a phase's record at a stated moment; ``render`` writes it in a
format.  Markdown, CSV and JSON are byte-identical for the same store and moment."""

from __future__ import annotations

from reports.model import PhaseReport, build_report, probe_success

__all__ = ["FORMATS", "PhaseReport", "build_report", "probe_success", "render"]

FORMATS = ("html", "pdf", "md", "csv", "json")


def render(report: PhaseReport, fmt: str) -> bytes:
    """The report in ``fmt`` (one of FORMATS) as bytes."""
    from reports.data import render_csv, render_json
    from reports.html import render_html
    from reports.markdown import render_markdown
    from reports.pdf import html_to_pdf

    if fmt == "md":
        return render_markdown(report).encode()
    if fmt == "csv":
        return render_csv(report).encode()
    if fmt == "json":
        return render_json(report).encode()
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "pdf":
        return html_to_pdf(render_html(report))
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
