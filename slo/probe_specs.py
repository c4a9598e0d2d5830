"""The plan's ``probes:`` entries (per phase and per service): one pydantic model per kind,
told apart by ``kind``.  Credentials are never in the plan: every URL that may carry one is
named by ``*_env`` (an environment variable) or ``*_file`` (a mounted file).  What the
probes mean and how they are judged: :mod:`slo.probes`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from slo.units import format_duration, parse_duration

__all__ = ["PROBE_KINDS", "AlertResponseProbe", "CompareProbe", "CompareRequest",
           "ConsistencyProbe", "CoverageProbe", "DeployTimeProbe", "FilesProbe", "HttpProbe",
           "ProbeSpec", "RecoveryTimeProbe", "SessionProbe", "SplitProbe", "TablePair"]

#: every kind of probe, with what it checks (the seed's words where it has them)
PROBE_KINDS: dict[str, str] = {
    "http": "an endpoint answers with the expected status, body and latency",
    "compare": "the same requests to the monolith and the service give the same answers",
    "consistency": "two databases hold the same rows (counts, checksums by key range, lag)",
    "files": "files fetched through both variants (or two trees) match by size and SHA-256",
    "session": "a session made through one variant is honoured by the other",
    "deploy_time": "each Deployment's latest rollout finished within the limit",
    "recovery_time": "a restarted pod was ready again within the limit",
    "alert_response": "critical events reached their critical channels within the limit",
    "coverage": "every variant has live up series and the figures its targets need",
    "split": "the share the gateway sent to the candidate matches the route's weight",
}

_Duration = Annotated[timedelta, BeforeValidator(parse_duration),
                      PlainSerializer(format_duration, return_type=str)]


class ProbeBase(BaseModel):
    """What every probe has: a name unique in the plan, how often it runs, when its
    newest result is too old to count, and what a failure does to the step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    interval: _Duration = timedelta(minutes=5)
    #: default: three intervals (a result survives two missed rounds)
    stale_after: _Duration | None = None
    on_fail: Literal["fail", "hold"] = "fail"
    timeout: _Duration = timedelta(seconds=10)

    @property
    def max_age(self) -> timedelta:
        return self.stale_after or 3 * self.interval


def _one_of(data: Any, *groups: tuple[str, ...]) -> None:
    """Each group is a set of keys of which exactly one must be given."""
    for keys in groups:
        given = [k for k in keys if isinstance(data, Mapping) and data.get(k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(keys)}, got "
                             f"{', '.join(given) or 'none'}")


class HttpProbe(ProbeBase):
    kind: Literal["http"]
    url: str | None = None
    url_env: str | None = None
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: int = 200
    body_contains: str | None = None
    json_path: str | None = None           # dotted: ``status`` or ``checks.0.state``
    json_equals: Any = None
    max_latency_ms: float | None = Field(default=None, gt=0)
    authorization_env: str | None = None   # the Authorization header's value

    @model_validator(mode="before")
    @classmethod
    def _where(cls, data: Any) -> Any:
        _one_of(data, ("url", "url_env"))
        return data


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^/")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    body: Any = None


class CompareProbe(ProbeBase):
    """The same requests sent to the monolith and to the service, the answers compared
    (status, and the JSON bodies but for the ``ignore``d fields)."""

    kind: Literal["compare"]
    baseline_url: str | None = None
    baseline_url_env: str | None = None
    candidate_url: str | None = None
    candidate_url_env: str | None = None
    requests: list[CompareRequest] = Field(min_length=1)
    #: dotted field paths left out of the comparison; ``*`` matches any key or index
    ignore: list[str] = Field(default_factory=list)
    authorization_env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _where(cls, data: Any) -> Any:
        _one_of(data, ("baseline_url", "baseline_url_env"),
                ("candidate_url", "candidate_url_env"))
        return data


class TablePair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    candidate_table: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    key: str = Field(default="id", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    columns: list[str] = Field(min_length=1)
    updated_at: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _columns(self) -> TablePair:
        for c in self.columns:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", c):
                raise ValueError(f"column {c!r} is not a plain SQL identifier")
        return self

    @property
    def other(self) -> str:
        return self.candidate_table or self.table


class ConsistencyProbe(ProbeBase):
    kind: Literal["consistency"]
    baseline_db_env: str | None = None
    baseline_db_file: str | None = None
    candidate_db_env: str | None = None
    candidate_db_file: str | None = None
    tables: list[TablePair] = Field(min_length=1)
    chunk_rows: int = Field(default=10_000, ge=1)
    #: key ranges checked per table per round; bigger tables are walked over rounds
    chunks_per_round: int = Field(default=10, ge=1)
    statement_timeout: _Duration = timedelta(seconds=5)
    max_lag: _Duration = timedelta(minutes=1)

    @model_validator(mode="before")
    @classmethod
    def _where(cls, data: Any) -> Any:
        _one_of(data, ("baseline_db_env", "baseline_db_file"),
                ("candidate_db_env", "candidate_db_file"))
        return data


class FilesProbe(ProbeBase):
    """Files compared through both variants' URLs (``manifest`` of paths) or between two
    directory trees (``baseline_dir``, ``candidate_dir``)."""

    kind: Literal["files"]
    baseline_url: str | None = None
    candidate_url: str | None = None
    baseline_dir: str | None = None
    candidate_dir: str | None = None
    manifest: list[str] = Field(default_factory=list)
    manifest_file: str | None = None
    #: at most this many files per run (taken in turn over runs); None: all
    sample: int | None = Field(default=None, ge=1)
    authorization_env: str | None = None

    @model_validator(mode="after")
    def _where(self) -> FilesProbe:
        urls = self.baseline_url is not None and self.candidate_url is not None
        dirs = self.baseline_dir is not None and self.candidate_dir is not None
        if urls == dirs:
            raise ValueError("expected baseline_url and candidate_url, or baseline_dir and "
                             "candidate_dir")
        if urls and not (self.manifest or self.manifest_file):
            raise ValueError("comparing through URLs needs a manifest or manifest_file")
        return self


class SessionProbe(ProbeBase):
    """Log in through ``login_url`` (one variant), use the session at ``check_url`` (the
    other): the cookie it set, or the bearer token at ``token_field`` of its answer."""

    kind: Literal["session"]
    login_url: str
    check_url: str
    login_body_env: str | None = None      # JSON credentials, from the environment
    login_body_file: str | None = None
    carry: Literal["cookie", "authorization"] = "cookie"
    token_field: str = "access_token"  # noqa: S105 - a JSON field name, not a secret
    expect_status: int = 200


class _K8sTimes(ProbeBase):
    namespace: str | None = None           # default: the router's namespace
    #: default: the backend of each service the probe belongs to
    deployments: list[str] = Field(default_factory=list)


class DeployTimeProbe(_K8sTimes):
    kind: Literal["deploy_time"]
    max: _Duration = timedelta(minutes=5)


class RecoveryTimeProbe(_K8sTimes):
    kind: Literal["recovery_time"]
    max: _Duration = timedelta(minutes=2)
    #: restarts older than this are not judged again
    window: _Duration = timedelta(days=7)


class AlertResponseProbe(ProbeBase):
    kind: Literal["alert_response"]
    max: _Duration = timedelta(minutes=1)
    window: _Duration = timedelta(hours=24)


class CoverageProbe(ProbeBase):
    kind: Literal["coverage"]


class SplitProbe(ProbeBase):
    """What the gateway sent to the candidate, from the access log, against the route's
    weight; outside binomial noise (at ``confidence``) and by more than ``min_difference``
    it is drift, and holds the next step by default."""

    kind: Literal["split"]
    on_fail: Literal["fail", "hold"] = "hold"
    #: default: the probe's own service, or its phase's services
    services: list[str] = Field(default_factory=list)
    window: _Duration = timedelta(minutes=20)
    confidence: float = Field(default=0.999, gt=0.5, lt=1)
    min_difference: float = Field(default=0.02, ge=0, le=1)
    min_requests: int = Field(default=200, ge=1)


ProbeSpec = Annotated[
    HttpProbe | CompareProbe | ConsistencyProbe | FilesProbe | SessionProbe
    | DeployTimeProbe | RecoveryTimeProbe | AlertResponseProbe | CoverageProbe | SplitProbe,
    Field(discriminator="kind"),
]
