"""Where the engine's work runs: inline on the event loop for an in-process store, on one thread for a remote one.

Scoring over a memory or SQLite store is a sub-millisecond CPU step, so it runs on the
event loop with no thread hand-off. A Redis store answers across the network and may
stall (a paused server waits for the socket timeout); on the event loop that stall
would hold every request, ``/healthz`` included. With a remote store the use cases that
touch the engine therefore run on one dedicated thread: the loop stays free, and the
engine is still used by one thread at a time, in arrival order, as before.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class EngineWorker:
    """Runs engine calls inline (``remote=False``) or on a single dedicated thread (``remote=True``)."""

    def __init__(self, *, remote: bool) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="orderguard-engine") if remote else None

    async def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)``, on the worker thread when there is one."""
        if self._executor is None:
            return fn(*args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Finish the calls already submitted, then stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
