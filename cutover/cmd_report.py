"""Placeholder until the phase reports work lands."""

import argparse

from cutover.pending import not_yet


def report(args: argparse.Namespace) -> int:
    return not_yet("report", issue="phase reports")
