"""Placeholder until the demo work lands."""

import argparse

from cutover.pending import not_yet


def demo(args: argparse.Namespace) -> int:
    return not_yet("demo", issue="demo")
