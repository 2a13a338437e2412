"""A real ``bentoml serve`` of this repository on a free 127.0.0.1 port: the one launcher of the tests and
the benchmarks (tests/conftest.py's fixtures, benchmarks/*.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Server keep-alive, as `make serve` sets it. uvicorn's default (5 s) equals httpx's idle expiry: a client
# starved of CPU reuses a connection the server is closing, and the request fails (seen at 300 clients on
# 2 cores). A server keep-alive longer than any client's lets the client close first.
KEEP_ALIVE_S = 75


class ServeProcess:
    """A real ``bentoml serve`` of this repository on a free 127.0.0.1 port, in its own process group.

    The one launcher of the tests and the benchmarks; ``stop()`` sends SIGTERM to the group.
    """

    def __init__(self, models_dir: Path, env: dict[str, str] | None = None, log_path: Path | None = None):
        self._models_dir, self._env, self._log_path = Path(models_dir).resolve(), env, log_path
        self._start()

    def _start(self) -> None:
        models_dir = self._models_dir
        self.port = free_port()
        self.host, self.url = "127.0.0.1", f"http://127.0.0.1:{self.port}"
        self.log_path = Path(self._log_path or models_dir.parent / f"serve-{self.port}.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        bentoml = Path(sys.executable).with_name("bentoml")
        self.proc = subprocess.Popen(
            [
                str(bentoml),
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--timeout-keep-alive",
                str(KEEP_ALIVE_S),
            ],  # fmt: skip
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own BENTOML_HOME: every `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir at start,
            # so servers sharing one would reset each other's metrics.
            env={
                **os.environ,
                "BENTOML_HOME": str(self.log_path.parent / f"bentoml-home-{self.port}"),
                "GANSERVE_MODELS_DIR": str(models_dir),
                **(self._env or {}),
            },
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> ServeProcess:
        """Wait for ``/readyz``; raise RuntimeError with the server's log if it exits or never gets ready."""
        import httpx

        deadline = time.monotonic() + timeout
        restarts = 2
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # Free ports are picked before they are bound (ours, and circus's control sockets), so another
                # process can take one in between: start again on fresh ports rather than fail.
                if restarts and "Address already in use" in self.log():
                    restarts -= 1
                    self._log.close()
                    self._start()
                    continue
                raise RuntimeError(f"bentoml serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's whole process tree so far."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> int:
        """SIGTERM to the process group (in-flight requests finish), SIGKILL after 60 s; the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
