"""No secret reaches a log line, whichever logger wrote it."""

from __future__ import annotations

import json
import logging

import pytest

from cutover.logs import JsonFormatter, RedactingFilter, redact


@pytest.mark.parametrize(("text", "secret"), [
    ("POST https://hooks.slack.com/services/T0/B0/XYZsecret -> 500", "XYZsecret"),
    ("Authorization: Bearer eyJhbGciOi.secret", "eyJhbGciOi.secret"),
    ("headers={'authorization': 'Bearer tok3n'}", "tok3n"),
])
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_the_filter_masks_any_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("some.library")
    handler_filter = RedactingFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="some.library"):
            logger.info("calling %s", "https://example.invalid/hook/abcdef123")
    finally:
        logger.removeFilter(handler_filter)
    assert "abcdef123" not in caplog.text and "https://example.invalid/***" in caplog.text


def test_json_lines() -> None:
    record = logging.LogRecord("cutover.worker", logging.WARNING, __file__, 1,
                               "round %s failed", ("7",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["msg"] == "round 7 failed"
    assert line["logger"] == "cutover.worker" and line["ts"].endswith("+00:00")
