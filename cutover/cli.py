"""The command line: parse, wire, dispatch, and map errors to exit codes.

Exit 0 on success, 1 when the command ran but refused or failed, 2 on bad input, with
one clear line on stderr.  Each command's body lives in a ``cutover.cmd_*`` module."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from slo.errors import ConfigError, CutoverError

__all__ = ["main"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog.removeprefix('cutover').strip() or 'usage'}: {message}")


def _globals(p: argparse.ArgumentParser, *, top: bool) -> None:
    # accepted before or after the subcommand; SUPPRESS keeps a later default from
    # overwriting what was given earlier
    default = None if top else argparse.SUPPRESS
    p.add_argument("--plan", default=default, help="plan file (env CUTOVER_PLAN)")
    p.add_argument("--db", default=default, help="database URL (env CUTOVER_DB)")
    p.add_argument("--log-format", choices=["text", "json"], default=default,
                   help="log lines as text or JSON (env CUTOVER_LOG_FORMAT)")
    p.add_argument("-v", "--verbose", action="count", default=default)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cutover", description="Move live traffic from a monolith to new "
                     "services, one route at a time, on the evidence.")
    _globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def cmd(name: str, target: str, help_: str, parent: argparse._SubParsersAction | None = None
            ) -> argparse.ArgumentParser:
        p = (parent or sub).add_parser(name, help=help_, description=help_)
        _globals(p, top=False)
        p.set_defaults(target=target)
        return p

    plan = sub.add_parser("plan", help="check or describe the plan")
    plan_sub = plan.add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
    p = cmd("check", "cmd_plan:check", "validate the plan", plan_sub)
    p.add_argument("--live", action="store_true",
                   help="also ask the plan's Prometheus whether every query answers")
    p.add_argument("--at", help="with --live: ask as of T (ISO 8601 or -2h; default now)")
    cmd("schema", "cmd_plan:schema", "print the plan's JSON Schema", plan_sub)
    p = cmd("import-openslo", "cmd_plan:import_openslo",
            "turn OpenSLO v1 SLO/SLI documents into plan targets and queries", plan_sub)
    p.add_argument("files", nargs="+", metavar="FILE")
    p = cmd("export-openslo", "cmd_plan:export_openslo",
            "write the plan's targets as OpenSLO v1 SLO documents", plan_sub)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p = cmd("suggest-logs", "cmd_plan:suggest_logs",
            "say which known log format some access-log lines fit, and print the plan "
            "snippet that reads them", plan_sub)
    p.add_argument("file", nargs="?", help="a log file (default: standard input)")
    p.add_argument("--lines", type=int, default=200, help="how many lines to try (200)")

    db = sub.add_parser("db", help="the store's schema and data")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    cmd("upgrade", "cmd_db:upgrade", "create or migrate the store's schema", db_sub)
    p = cmd("prune", "cmd_db:prune", "delete rollups and points older than a duration", db_sub)
    p.add_argument("--older-than", required=True, help="e.g. 90d")

    logs = sub.add_parser("logs", help="gateway access logs")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, parser_class=_Parser)
    p = cmd("check", "cmd_logs:check", "how the first lines of a log are read", logs_sub)
    p.add_argument("file", nargs="?", default="-", help="a log file, or - for standard input")
    p.add_argument("--format", help="json, nginx, ingress-nginx, haproxy, envoy or an nginx "
                   "log_format (default: the plan's first log source's)")
    p.add_argument("--lines", type=int, default=20, help="how many lines (default 20)")
    p.add_argument("--json", action="store_true")

    p = cmd("collect", "cmd_collect:collect", "pull every source of the plan")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--from", dest="start", help="ISO 8601 time or relative (-2h)")
    p.add_argument("--to", dest="end", help="ISO 8601 time or relative (-5m)")

    p = cmd("evaluate", "cmd_evaluate:evaluate", "judge the services of the current phase")
    p.add_argument("--service")
    p.add_argument("--at", help="ISO 8601 time or relative; default now")
    p.add_argument("--json", action="store_true")

    p = cmd("backtest", "cmd_backtest:backtest", "replay the judge over the store's history")
    p.add_argument("--from", dest="start", required=True, help="ISO 8601 time or relative (-7d)")
    p.add_argument("--to", dest="end", default="now", help="ISO 8601 time or relative")
    p.add_argument("--every", required=True, help="time between looks, e.g. 30s or 10m")
    p.add_argument("--service")
    p.add_argument("--steps", default="decisions",
                   help="the step timeline: decisions, observed (the logs' split) or a "
                   "CSV/YAML file of service, weight, since")
    p.add_argument("--json", action="store_true")
    p.add_argument("--store", action="store_true",
                   help="store each evaluation (skipping times this plan already has)")

    p = cmd("status", "cmd_rollout:status", "where each service stands")
    p.add_argument("--json", action="store_true")

    p = cmd("approve", "cmd_rollout:approve", "move a service to its next step")
    p.add_argument("service")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor")
    p.add_argument("--override", action="store_true",
                   help="go past a verdict that is not pass (deliberate, recorded)")
    p.add_argument("--from-weight", type=int, metavar="PCT",
                   help="the weight you looked at (status): refused if it has moved since")

    p = cmd("revert", "cmd_rollout:revert", "step a service back, or everything to baseline")
    p.add_argument("service", nargs="?")
    p.add_argument("--all", action="store_true", help="every service back to the baseline")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor")
    p.add_argument("--to", choices=["previous", "0"], default="previous")
    p.add_argument("--from-weight", type=int, metavar="PCT",
                   help="the weight you looked at: a one-step revert is refused if it has "
                        "moved since (a revert to 0 never is)")
    p.add_argument("--json", action="store_true", help="--all: the rollback's outcome as JSON")
    p.add_argument("--scale-baseline", action="store_true",
                   help="--all: scale the baseline's Deployment up to baseline.min_replicas "
                        "first, and wait for its replicas")
    p.add_argument("--no-wait", action="store_true",
                   help="with --scale-baseline: move the traffic at once, do not wait")
    p.add_argument("--wait-timeout", help="with --scale-baseline: how long to wait for the "
                   "replicas (default 2m); the traffic moves then, ready or not")

    p = cmd("decisions", "cmd_rollout:decisions", "the audit trail, newest first")
    p.add_argument("--service")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)

    p = cmd("report", "cmd_report:report", "export a phase report")
    p.add_argument("--phase", required=True)
    p.add_argument("--format", choices=["html", "pdf", "md", "csv", "json"], default="html")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--at", help="the report's moment (default now)")

    probes = sub.add_parser("probes", help="the checks no metric measures")
    probes_sub = probes.add_subparsers(dest="probes_command", required=True, parser_class=_Parser)
    p = cmd("run", "cmd_probes:run", "run the due probes (or the named ones) once", probes_sub)
    p.add_argument("--probe", action="append", help="run this probe, due or not (repeatable)")
    p.add_argument("--all", action="store_true", help="run every probe, due or not")
    p.add_argument("--at", help="ISO 8601 time or relative; default now")
    p.add_argument("--json", action="store_true")
    p = cmd("list", "cmd_probes:list_", "each probe with its newest result", probes_sub)
    p.add_argument("--at", help="ISO 8601 time or relative; default now")
    p.add_argument("--json", action="store_true")

    p = cmd("signoff", "cmd_probes:signoff", "record a person's word on a phase's criterion")
    p.add_argument("--phase", required=True)
    p.add_argument("--criterion", required=True, help="its number in the phase, or its text")
    p.add_argument("--note", required=True, help="what was confirmed, and how")
    p.add_argument("--actor")
    p.add_argument("--json", action="store_true")

    alerts = sub.add_parser("alerts", help="chat channels")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, parser_class=_Parser)
    cmd("test", "cmd_alerts:test", "send a test message to every channel", alerts_sub)

    p = cmd("worker", "cmd_worker:worker", "collect, evaluate, auto-revert, deliver alerts")
    p.add_argument("--once", action="store_true")
    p.add_argument("--interval", help="default: the plan's interval")
    p.add_argument("--metrics-port", type=int,
                   default=int(os.environ.get("CUTOVER_METRICS_PORT", "9108")))

    p = cmd("dashboard", "cmd_worker:dashboard", "serve the dashboard")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="where the dashboard listens (default 127.0.0.1: this machine only)")

    p = cmd("up", "cmd_worker:up", "the worker and the dashboard together")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="where the dashboard listens (default 127.0.0.1: this machine only)")
    p.add_argument("--metrics-port", type=int,
                   default=int(os.environ.get("CUTOVER_METRICS_PORT", "9108")))

    p = cmd("demo", "cmd_demo:demo", "the self-contained demo (SQLite, simulated traffic)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="where the dashboard listens (default 127.0.0.1: this machine only)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--seed-only", action="store_true", help="write the history and exit")
    p.add_argument("--dir", help="where the demo keeps its log and database")
    return parser


def _resolve_globals(args: argparse.Namespace) -> None:
    args.plan = getattr(args, "plan", None) or os.environ.get("CUTOVER_PLAN",
                                                              "plans/nanopore.yaml")
    args.db = getattr(args, "db", None) or os.environ.get("CUTOVER_DB", "sqlite:///cutover.db")
    args.log_format = getattr(args, "log_format", None) or os.environ.get(
        "CUTOVER_LOG_FORMAT", "text")
    args.verbose = getattr(args, "verbose", None) or 0


_TIME_OPTIONS = ("--at", "--from", "--to", "--older-than")


def _join_relative_times(argv: Sequence[str]) -> list[str]:
    """``--at -2h`` means ``--at=-2h``: argparse would take ``-2h`` for an option."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _TIME_OPTIONS:
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from cutover.logs import setup_logging

    try:
        args = build_parser().parse_args(_join_relative_times(sys.argv[1:] if argv is None
                                                              else argv))
        _resolve_globals(args)
        setup_logging(fmt=args.log_format, verbose=args.verbose)
        module, func = args.target.split(":")
        handler = getattr(importlib.import_module(f"cutover.{module}"), func)
        code: int = handler(args)
        return code
    except ConfigError as e:
        print(f"cutover: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CutoverError as e:
        print(f"cutover: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("cutover: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
