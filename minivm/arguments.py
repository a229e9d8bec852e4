"""Argument types for the command line (argparse ``type=`` callables): whole numbers, seconds
and policy names, each refused with a one-line reason. Shared by every command."""

from __future__ import annotations

import argparse

from minivm.gil.policies import check_policy_name
from minivm.runtime.config import MAX_SECONDS
from minivm.runtime.engine import check_engine_name


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (``_`` between digits allowed, as in the language)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (``_`` between digits allowed): a check interval, a count."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number of seconds, greater than 0 and at most ``MAX_SECONDS`` (about 31 years: a
    larger one, or infinity, would overflow the host's timed waits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    if not value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:,} seconds, got {text}")
    return value


def policy_name(text: str) -> str:
    try:
        return check_policy_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def engine_name(text: str) -> str:
    """An engine name (``auto``, ``interp``, ``compiled``), or the list of valid ones."""
    try:
        return check_engine_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
