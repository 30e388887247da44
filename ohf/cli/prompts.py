"""Numbered questions on a terminal: one choice or several, the default marked, Enter takes it.

Questions and menus go to stderr (stdout carries the command's result); answers are read a
line at a time from stdin. End of input answers nothing: the caller stops, writing nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO


class NoAnswer(Exception):
    """stdin ended before the question was answered."""


def _ask(prompt: str, source: TextIO, sink: TextIO) -> str:
    sink.write(prompt)
    sink.flush()
    line = source.readline()
    if not line:
        raise NoAnswer
    return line.strip()


def _menu(title: str, options: Sequence[str], marked: set[int], sink: TextIO) -> None:
    sink.write(f"\n{title}\n")
    width = len(str(len(options)))
    for index, option in enumerate(options, 1):
        star = "*" if index - 1 in marked else " "
        sink.write(f" {star}{index:>{width}}) {option}\n")


def _numbers(answer: str, count: int) -> list[int] | None:
    """The 0-based indexes of `1,3 4`, or None unless every one is a number in 1..count."""
    words = answer.replace(",", " ").split()
    if not words or not all(w.isdigit() and 1 <= int(w) <= count for w in words):
        return None
    return list(dict.fromkeys(int(w) - 1 for w in words))


def one(
    title: str,
    options: Sequence[str],
    default: int | None,
    source: TextIO = sys.stdin,
    sink: TextIO = sys.stderr,
) -> int:
    """The index of the option chosen (`default`, marked *, on Enter)."""
    _menu(title, options, set() if default is None else {default}, sink)
    hint = f"Enter = {default + 1}" if default is not None else "a number"
    while True:
        answer = _ask(f"choose 1-{len(options)} ({hint}): ", source, sink)
        if not answer and default is not None:
            return default
        picked = _numbers(answer, len(options))
        if picked is not None and len(picked) == 1:
            return picked[0]
        sink.write(f"  one number from 1 to {len(options)}, please\n")


def many(
    title: str,
    options: Sequence[str],
    defaults: Sequence[int],
    source: TextIO = sys.stdin,
    sink: TextIO = sys.stderr,
) -> list[int]:
    """The indexes of the options chosen, in the order typed (`defaults`, marked *, on Enter)."""
    _menu(title, options, set(defaults), sink)
    hint = "Enter = the marked ones" if defaults else "numbers"
    while True:
        answer = _ask(f"choose, e.g. 1,3 ({hint}): ", source, sink)
        if not answer and defaults:
            return list(defaults)
        picked = _numbers(answer, len(options))
        if picked is not None:
            return picked
        sink.write(f"  numbers from 1 to {len(options)}, separated by commas, please\n")


def confirm(question: str, source: TextIO = sys.stdin, sink: TextIO = sys.stderr) -> bool:
    """Yes unless the answer starts with n (Enter says yes)."""
    return not _ask(f"\n{question} [Y/n]: ", source, sink).lower().startswith("n")
