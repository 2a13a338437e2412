"""Shared pieces of the benchmarks: model discovery, the raw ONNX Runtime limit, a server, tables.

Timings on a shared machine are noisy, so every figure here is a median over repeated runs and every
comparison is made between things measured in the same run, interleaved.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gancore.contract import image_indices, inputs_for  # noqa: E402
from gancore.generator import GeneratorModel, model_threads  # noqa: E402


def model_paths(models_dir: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """The ``*.onnx`` files of ``models_dir`` (only ``names`` when given), sorted."""
    folder = Path(models_dir)
    paths = sorted(p for p in folder.glob("*.onnx") if not p.name.startswith("."))
    if names:
        paths = [p for p in paths if p.stem in names]
    if not paths:
        raise SystemExit(f"no .onnx models in {folder}" + (f" named {', '.join(names)}" if names else ""))
    return paths


def default_models_dir() -> Path:
    return Path(os.environ.get("GANSERVE_MODELS_DIR", ROOT / "models"))


def service_threads() -> int:
    """The threads the service gives one model call (GANSERVE_THREADS, 0 = all cores)."""
    from service.settings import Settings

    return model_threads(Settings.from_env().threads or None)


def model_inputs(model: GeneratorModel, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    info = model.info
    z, label, _ = inputs_for(seed, image_indices(0, batch), info.latent_dim, info.num_classes, None)
    return z, label


def time_calls(fn: Callable[[], object], seconds: float, min_calls: int = 5) -> list[float]:
    """Call ``fn`` repeatedly for about ``seconds`` (at least ``min_calls`` times); per-call seconds."""
    fn()  # warm-up (allocations, kernel choice)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs), q))


def raw_limit(
    model: GeneratorModel, batches: Sequence[int] = (64, 128, 256), seconds: float = 0.6
) -> tuple[float, int]:
    """The model's own peak throughput (images/s, median per-call) over ``batches``, and the best batch."""
    best, best_batch = 0.0, batches[0]
    for b in batches:
        z, label = model_inputs(model, b)
        rate = b / median(time_calls(lambda z=z, label=label: model.run(z, label), seconds))
        if rate > best:
            best, best_batch = rate, b
    return best, best_batch


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


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    """A Markdown table (pastes straight into the README)."""
    if title:
        print(f"\n{title}\n")
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def machine_line() -> str:
    """Date, CPU count and load: what a reader needs to judge the figures."""
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
