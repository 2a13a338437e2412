"""How a model call uses several threads: row blocks (as the service runs it) vs ONNX Runtime's own threading.

    .venv/bin/python -m benchmarks.threads [--models-dir models] [--models digits-dcgan,emoji-cgan]
        [--threads 2] [--batches 1,2,4,8,64] [--rounds 5]

*row blocks*: ``GeneratorModel.run`` — the call's rows split into ``threads`` blocks run at once as
single-threaded ONNX Runtime calls of one session. *intra-op*: one call of a session with ``threads``
intra-op threads (ORT's own parallelism, without spinning, as the service used it before). Both are timed
in turn, round by round, on the same inputs; CPU time is this process's (all threads) per image, wall time
per image, medians over rounds.

A second table per model checks reproducibility: for each thread count from 2 to ``--max-threads``
(default 8), whatever cores this machine has, whether each way gives exactly the floats of one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from benchmarks.common import default_models_dir, machine_line, model_inputs, model_paths, print_table
from gancore.contract import IMAGE, feeds
from gancore.generator import GeneratorModel, session_options


def intra_op_session(path, threads: int) -> ort.InferenceSession:
    """The service's session, but with ORT's own intra-op threads (the way it ran before row blocks)."""
    opts = session_options()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def per_image(fn: Callable[[], object], batch: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per image over enough calls for ≈ 300 images."""
    fn()
    calls = max(2, 300 // batch)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    n = calls * batch
    return 1e6 * (time.process_time() - cpu0) / n, 1e6 * (time.perf_counter() - wall0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=default_models_dir())
    ap.add_argument("--models", default="digits-dcgan,emoji-cgan")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,2,4,8,64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-threads", type=int, default=8)
    args = ap.parse_args()
    print(f"threads per model call: {machine_line()}; {args.threads} threads, {args.rounds} rounds")
    for path in model_paths(args.models_dir, [n for n in args.models.split(",") if n]):
        blocks = GeneratorModel(path, ["CPUExecutionProvider"], args.threads)
        intra = intra_op_session(path, args.threads)
        rows = []
        for batch in (int(b) for b in args.batches.split(",")):
            z, label = model_inputs(blocks, batch)
            ways = {
                "row blocks": lambda m=blocks, z=z, label=label: m.run(z, label),
                "intra-op": lambda s=intra, z=z, label=label: s.run([IMAGE], feeds(z, label)),
            }
            seen: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
            for _ in range(args.rounds):
                for name, fn in ways.items():
                    seen[name].append(per_image(fn, batch))
            med = {k: [statistics.median(x[i] for x in v) for i in (0, 1)] for k, v in seen.items()}
            rows.append([batch, *med["intra-op"], *med["row blocks"],
                         med["intra-op"][1] / med["row blocks"][1]])  # fmt: skip
        print_table(
            ["batch", "intra-op CPU µs/img", "intra-op wall µs/img", "row blocks CPU µs/img",
             "row blocks wall µs/img", "speed-up (wall)"],
            rows,
            title=f"{path.stem}: {args.threads} threads",
        )  # fmt: skip
        same = {"row blocks": [], "intra-op": []}
        z, label = model_inputs(blocks, 64, seed=3)
        reference = GeneratorModel(path, ["CPUExecutionProvider"], 1).run(z, label)
        for t in range(2, args.max_threads + 1):
            outs = {
                "row blocks": GeneratorModel(path, ["CPUExecutionProvider"], t).run(z, label),
                "intra-op": intra_op_session(path, t).run([IMAGE], feeds(z, label))[0],
            }
            for way, out in outs.items():
                if np.array_equal(out, reference):
                    same[way].append(t)
        threads = list(range(2, args.max_threads + 1))
        print_table(
            ["way", "threads giving the 1-thread floats (64 images)", "threads giving other floats"],
            [[k, ",".join(map(str, v)) or "none", ",".join(str(t) for t in threads if t not in v) or "none"]
             for k, v in same.items()],
        )  # fmt: skip


if __name__ == "__main__":
    main()
