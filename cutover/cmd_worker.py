"""Placeholder until the worker and dashboard work lands."""

import argparse

from cutover.pending import not_yet


def worker(args: argparse.Namespace) -> int:
    return not_yet("worker", issue="worker and dashboard")


def dashboard(args: argparse.Namespace) -> int:
    return not_yet("dashboard", issue="worker and dashboard")


def up(args: argparse.Namespace) -> int:
    return not_yet("up", issue="worker and dashboard")
