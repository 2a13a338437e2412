"""The limit: in-process ONNX Runtime vs PyTorch eager, per model and batch size.

    .venv/bin/python -m benchmarks.raw [--models-dir models] [--batches 1,2,...,512] [--seconds 0.5]

ONNX Runtime runs a call as the service does (its rows split into single-threaded runs on GANSERVE_THREADS
threads, default all cores); PyTorch eager gets the same thread count (intra-op). The eager network is
rebuilt from the ONNX file itself (the export folds BatchNorm into the convolutions, so the rebuilt
generator has biased convolutions and no BatchNorm) and checked against ONNX Runtime before it is timed.
Batch sizes are interleaved (ORT then eager for each size) so both see the same machine load. Figures:
median latency per call and the throughput that median implies.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from benchmarks.common import (
    default_models_dir,
    machine_line,
    median,
    model_inputs,
    model_paths,
    print_table,
    service_threads,
    time_calls,
)
from gancore.contract import ModelMetadata
from gancore.generator import GeneratorModel

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def eager_generator(path: Path, threads: int):
    """The ONNX file's generator as a PyTorch module with the file's weights, or None without torch."""
    try:
        import onnx
        import torch
        from onnx import numpy_helper

        from training.config import ModelConfig, TrainConfig
        from training.networks import Generator
    except ImportError:
        return None
    torch.set_num_threads(threads)
    proto = onnx.load(str(path))
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    if meta.config is None:
        raise SystemExit(f"{path}: no training config in the metadata: cannot rebuild the eager generator")
    cfg: ModelConfig = TrainConfig.from_dict(json.loads(meta.config)).model
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    # The export folds BatchNorm into the preceding convolution ("…weight_bias"); mirror that.
    g = Generator(dataclasses.replace(cfg, g_norm="none")).eval()
    state = {}
    for key in g.state_dict():
        src = f"g.{key}"
        if src not in weights and key.endswith(".bias"):
            src = f"g.{key[: -len('.bias')]}.weight_bias"
        if src not in weights:
            raise SystemExit(f"{path}: cannot rebuild the eager generator: no initializer for {key}")
        state[key] = torch.from_numpy(weights[src].copy())
    g.load_state_dict(state)
    return g


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=default_models_dir())
    ap.add_argument("--models", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--seconds", type=float, default=0.5, help="timing window per cell")
    ap.add_argument("--threads", type=int, default=0, help="threads per call (default: as the service)")
    ap.add_argument("--no-eager", action="store_true", help="skip PyTorch eager")
    args = ap.parse_args(argv)
    threads = args.threads or service_threads()
    batches = [int(b) for b in args.batches.split(",")]
    names = [n for n in args.models.split(",") if n]
    print(f"raw model speed: {machine_line()}; {threads} threads (ORT row blocks, torch intra-op)")
    for path in model_paths(args.models_dir, names):
        model = GeneratorModel(path, ["CPUExecutionProvider"], threads)
        eager = None if args.no_eager else eager_generator(path, threads)
        rows = []
        for b in batches:
            z, label = model_inputs(model, b)
            ort_t = median(time_calls(lambda m=model, z=z, label=label: m.run(z, label), args.seconds))
            row = [b, ort_t * 1e3, b / ort_t]
            if eager is not None:
                import torch

                zt = torch.from_numpy(z)
                lt = None if label is None else torch.from_numpy(label)
                with torch.inference_mode():
                    if b == batches[0]:  # same network, same weights: prove it before timing it
                        diff = float(np.abs(eager(zt, lt).numpy() - model.run(z, label)).max())
                        if diff > 1e-4:
                            raise SystemExit(f"{path}: eager rebuild differs from ONNX by {diff:.2e}")
                    eager_t = median(time_calls(lambda g=eager, zt=zt, lt=lt: g(zt, lt), args.seconds))
                row += [eager_t * 1e3, b / eager_t, eager_t / ort_t]
            rows.append(row)
        headers = ["batch", "ORT ms", "ORT img/s"]
        if eager is not None:
            headers += ["eager ms", "eager img/s", "ORT speed-up"]
        peak = max(rows, key=lambda r: r[2])
        print_table(
            headers,
            rows,
            title=f"{path.stem} ({model.provider}); peak ORT {peak[2]:,.0f} img/s at batch {peak[0]}",
        )


if __name__ == "__main__":
    main()
