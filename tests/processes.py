"""Real server processes a test starts, pauses, kills and restarts: ``orderguard serve``, and its own Redis
or PostgreSQL on its own port.

The shared test services (``scripts/services.sh``) must stay up for every other test,
so outage tests run their own server and break that one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
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


def _as_postgres(command: list[str]) -> list[str]:
    """``command`` as the ``postgres`` user when running as root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresProcess:
    """A throwaway PostgreSQL 15 cluster in ``directory`` on a free local port (trust auth, no fsync)."""

    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(directory, user="postgres", group="postgres")
        subprocess.run(_as_postgres([f"{self.BIN}/initdb", "-D", f"{directory}/data", "-A", "trust", "-U",
                                     "postgres", "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
                   "-c fsync=off")
        subprocess.run(_as_postgres([f"{self.BIN}/pg_ctl", "-D", f"{self.directory}/data", "-o", options,
                                     "-l", f"{self.directory}/log", "-w", "-t", "60", "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        """Stop (``fast``: roll back open transactions and close connections; ``immediate``: like a crash)."""
        subprocess.run(_as_postgres([f"{self.BIN}/pg_ctl", "-D", f"{self.directory}/data", "-m", mode, "-w",
                                     "stop"]), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def postgres_process() -> Iterator[PostgresProcess]:
    """A started :class:`PostgresProcess` in a fresh directory under the system's temp folder (the ``postgres``
    user must reach it, which pytest's private ``tmp_path`` does not allow), stopped and removed afterwards."""
    directory = tempfile.mkdtemp(prefix="orderguard-pg-")
    try:
        server = PostgresProcess(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


SERVE = [sys.executable, "-c", "from cli import main; main()"]


@contextmanager
def serve_process(data: Path, port: int, *, env: Mapping[str, str] | None = None,
                  ) -> Iterator[subprocess.Popen[bytes]]:
    """``orderguard --data-dir data serve --port port`` in its own process group, ready (``/healthz`` answers);
    killed with SIGKILL afterwards if still running."""
    process = subprocess.Popen([*SERVE, "--data-dir", str(data), "serve", "--port", str(port)],
                               env={**os.environ, **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the service exited during start-up"
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
