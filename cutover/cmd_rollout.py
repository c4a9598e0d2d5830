"""Placeholder until the gate work lands."""

import argparse

from cutover.pending import not_yet


def status(args: argparse.Namespace) -> int:
    return not_yet("status", issue="gate")


def approve(args: argparse.Namespace) -> int:
    return not_yet("approve", issue="gate")


def revert(args: argparse.Namespace) -> int:
    return not_yet("revert", issue="gate")


def decisions(args: argparse.Namespace) -> int:
    return not_yet("decisions", issue="gate")
