"""Waiting on Prefect futures without making the process deaf to SIGTERM and Ctrl-C."""

from __future__ import annotations

from typing import Any, TypeVar

from prefect.futures import PrefectFuture

R = TypeVar("R")

POLL_S = 0.5


def result_when_done(future: PrefectFuture[R]) -> R:
    """`future.result()`, waited for in short slices.

    A wait without a timeout blocks the main thread inside a C lock until the task ends; a signal that the kernel
    delivers to a worker thread is then handled only after that (a whole capture, in a batch). Short waits return to
    the interpreter, which runs the signal handler within POLL_S.
    """
    wrapped: Any = future.wrapped_future
    while not wrapped.done():
        future.wait(timeout=POLL_S)
    return future.result()
