"""The one exception tree of cutover.

    CutoverError
     ├── ConfigError          bad input from the operator: a setting, an argument
     │    └── PlanError       a plan file that does not validate (carries every problem)
     ├── StoreError           the database refused or the schema is behind
     │    └── ConflictError   a row changed under us (optimistic version check)
     ├── SourceError          Prometheus or a log source did not answer as expected
     ├── RouterError          the traffic router (OpenShift, Gateway API) refused or failed
     ├── GateError            the gate refused a step (verdict, soak, operator, state)
     │    └── StaleError      the step was looked at before it moved: nothing was done
     ├── NotifyError          a chat webhook refused a message
     └── ReportError          a report could not be built

Each carries the data a caller needs to act on it, and its message says what was
expected and what came.  Every package raises from this tree; the command line maps
``ConfigError`` to exit 2 and every other ``CutoverError`` to exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConflictError",
    "CutoverError",
    "GateError",
    "NotifyError",
    "PlanError",
    "PlanProblem",
    "ReportError",
    "RouterError",
    "SourceError",
    "StaleError",
    "StoreError",
]


class CutoverError(Exception):
    """Root of every error cutover raises on purpose."""


class ConfigError(CutoverError, ValueError):
    """Bad input from the operator: a setting, a command-line argument, a file."""


@dataclass(frozen=True)
class PlanProblem:
    """One thing wrong with a plan: where (a YAML path and line) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "(plan)"
        suffix = f" (line {self.line})" if self.line is not None else ""
        return f"{where}: {self.message}{suffix}"


class PlanError(ConfigError):
    """A plan that does not validate; ``problems`` lists each one with its line."""

    def __init__(self, source: str, problems: list[PlanProblem]):
        self.source = source
        self.problems = problems
        first = str(problems[0]) if problems else "invalid plan"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {first}{more}")


class StoreError(CutoverError):
    """The database refused, or its schema is not the one this version expects."""


class ConflictError(StoreError):
    """A row changed between read and write (its version moved)."""

    def __init__(self, what: str, expected_version: int, found_version: int | None):
        self.what = what
        self.expected_version = expected_version
        self.found_version = found_version
        super().__init__(
            f"{what} changed under you: expected version {expected_version}, "
            f"found {found_version}; reload and try again"
        )


class SourceError(CutoverError):
    """A metric or log source did not answer, or answered something unusable."""

    def __init__(self, source: str, message: str):
        self.source = source
        super().__init__(f"{source}: {message}")


class RouterError(CutoverError):
    """The traffic router refused or failed a read or a change."""

    def __init__(self, route: str, message: str, *, status: int | None = None):
        self.route = route
        self.status = status
        super().__init__(f"route {route}: {message}")


class GateError(CutoverError):
    """The gate refused a step; ``reason`` says why in words an operator can act on."""

    def __init__(self, service: str, reason: str):
        self.service = service
        self.reason = reason
        super().__init__(f"{service}: {reason}")


class StaleError(GateError):
    """A decision made on a step that has moved since it was looked at: ``seen`` is the
    weight the caller saw, ``current`` the weight now, ``moved`` what moved it."""

    def __init__(self, service: str, *, seen: int, current: int, moved: str):
        self.seen = seen
        self.current = current
        self.moved = moved
        super().__init__(service, f"changed under you: you looked at {seen} %, it is at "
                         f"{current} % now ({moved}); nothing was done: look again")


class NotifyError(CutoverError):
    """A chat channel refused or did not take a message."""

    def __init__(self, channel: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None):
        self.channel = channel
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"channel {channel}: {message}")


class ReportError(CutoverError):
    """A report could not be built or written."""
