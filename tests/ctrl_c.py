"""Ctrl-C in tests that start a command: the command must receive SIGINT as it would from a terminal."""

from __future__ import annotations

import signal


def as_from_a_terminal() -> None:
    """preexec_fn of a command a test will Ctrl-C: SIGINT back to its default action, which Python turns into
    KeyboardInterrupt. A test run in the background of a non-interactive shell (`pytest … &`, a CI step's `&`) inherits
    SIGINT ignored, and so would the command: it would never see the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
