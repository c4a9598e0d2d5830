"""Placeholder until the Prometheus and gateway log collectors work lands."""

import argparse

from cutover.pending import not_yet


def collect(args: argparse.Namespace) -> int:
    return not_yet("collect", issue="Prometheus and gateway log collectors")
