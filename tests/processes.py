"""Real server processes a test starts, pauses, kills and restarts: its own Redis on its own port.

The shared test services (``scripts/services.sh``) must stay up for every other test,
so outage tests run their own server and break that one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.factories import free_port


class RedisProcess:
    """A ``redis-server`` on a free local port, with no persistence: a restart comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a stalled dependency)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL and wait: the server is gone, with its data."""
        if self._process is not None and self._process.poll() is None:
            self._signal(signal.SIGCONT)  # a paused process dies just as well, but let it
            self._process.kill()
            self._process.wait(timeout=20)
        self._process = None

    def _signal(self, sig: signal.Signals) -> None:
        if self._process is None:
            raise RuntimeError("the Redis process is not running")
        os.kill(self._process.pid, sig)


@contextmanager
def redis_process() -> Iterator[RedisProcess]:
    """A started :class:`RedisProcess`, killed afterwards whatever its state."""
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.kill()
