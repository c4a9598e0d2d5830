"""Placeholder until the SLO judge work lands."""

import argparse

from cutover.pending import not_yet


def evaluate(args: argparse.Namespace) -> int:
    return not_yet("evaluate", issue="SLO judge")
