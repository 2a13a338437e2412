"""The GPU check behind scripts/gpu_check.sh: train, resume, export and compare on an NVIDIA GPU; one table.

For a machine with PyTorch built with CUDA, possibly without network, without BentoML and with the CPU-only
onnxruntime. Every part that needs what the machine lacks is reported as skipped, with the reason.

Rows: each recipe trained briefly on the GPU in fp32 and bf16 (and WGAN-GP in fp16: the gradient penalty under
a gradient scaler), then ``torchrun`` (2 processes when 2 GPUs are visible, else 1) with a ``--resume``. For
each run: training images/s, whether the losses stayed finite, ONNX export parity (PyTorch on the CPU vs ONNX
Runtime), the generator's inference speed on the GPU in PyTorch against ONNX Runtime on the CPU (batch 64,
fp32), and the largest difference between the CPU (ONNX Runtime) and GPU (PyTorch) uint8 images of the same
seeds. Where onnxruntime-gpu offers CUDAExecutionProvider, the export also runs there (speed and difference)
and, where BentoML is installed, the exports are served and a served batch is compared with the CPU one.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 64


def _median_seconds(fn, calls: int, sync=None) -> float:
    fn()
    times = []
    for _ in range(calls):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _inputs(latent_dim: int, num_classes: int) -> dict[str, np.ndarray]:
    from gancore.contract import inputs_for

    z, rows, _ = inputs_for(0, np.arange(BATCH, dtype=np.uint64), latent_dim, num_classes, None)
    return {"z": z} if rows is None else {"z": z, "label": rows}


def compare_generators(run: Path, onnx_path: Path, row: dict, args: argparse.Namespace) -> None:
    """GPU PyTorch vs CPU ONNX Runtime (and CUDA ONNX Runtime where offered): speed and uint8 difference."""
    import onnxruntime as ort
    import torch

    from gancore.contract import to_uint8
    from training.export import load_generator

    g, cfg, _ = load_generator(run)
    m = cfg.model
    feeds = _inputs(m.latent_dim, m.num_classes if m.conditional else 0)
    g = g.to(args.device).eval()
    z = torch.from_numpy(feeds["z"]).to(args.device)
    label = torch.from_numpy(feeds["label"]).to(args.device) if "label" in feeds else None
    sync = torch.cuda.synchronize if args.device == "cuda" else None
    with torch.no_grad():
        gpu = g(z, label).float().cpu().numpy()
        row["torch_gpu_img_s"] = BATCH / _median_seconds(lambda: g(z, label), args.calls, sync)
    cpu_sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    cpu = cpu_sess.run(None, feeds)[0]
    row["ort_cpu_img_s"] = BATCH / _median_seconds(
        lambda: cpu_sess.run(None, feeds), max(3, args.calls // 10)
    )
    row["max_u8_cpu_vs_gpu"] = int(np.abs(to_uint8(cpu).astype(int) - to_uint8(gpu).astype(int)).max())
    if "CUDAExecutionProvider" in ort.get_available_providers():
        sess = ort.InferenceSession(
            str(onnx_path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
        # A GPU build lists CUDA as available even when its libraries are missing, then falls back.
        if sess.get_providers()[0] != "CUDAExecutionProvider":
            row["ort_cuda"] = "fell back to the CPU (CUDA libraries missing)"
            return
        out = sess.run(None, feeds)[0]
        row["ort_cuda_img_s"] = BATCH / _median_seconds(lambda: sess.run(None, feeds), args.calls)
        row["max_u8_ort_cuda_vs_cpu"] = int(
            np.abs(to_uint8(out).astype(int) - to_uint8(cpu).astype(int)).max()
        )


def train(name: str, recipe: str, precision: str, work: Path, args: argparse.Namespace) -> dict:
    """Train in-process on cuda; the row holds images/s and whether the losses stayed finite."""
    import torch

    from training.config import override, preset
    from training.trainer import METRICS, Trainer

    every = dict(sample_every=args.steps, checkpoint_every=args.steps, log_every=10)
    cfg = override(preset(recipe), image_size=32, g_width=64, d_width=64, batch_size=BATCH, steps=args.steps,
                   device=args.device, precision=precision, seed=0, **every)  # fmt: skip
    t = Trainer(cfg, work / name)
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    t.train_step()  # warm-up (cuDNN plans, allocator) outside the timing
    sync()
    t0 = time.perf_counter()
    t.run(progress=False)
    sync()
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (work / name / METRICS).read_text().splitlines()]
    finite = all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    return {"run": name, "train_img_s": (args.steps - 1) * BATCH / seconds, "losses_finite": finite}


def torchrun(work: Path, args: argparse.Namespace) -> dict:
    """``torchrun -m training train`` on CUDA, then ``--resume`` to more steps (the real command line)."""
    import torch

    n = min(2, torch.cuda.device_count()) if args.device == "cuda" else 2
    name = f"dcgan-torchrun-{n}proc"
    run = work / name
    exe = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    common = [exe, "--standalone", "--nproc-per-node", str(n), "-m", "training", "train"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = common + ["--recipe", "dcgan", "--image-size", "32", "--g-width", "64", "--d-width", "64",
                      "--batch-size", str(BATCH), "--steps", str(args.steps // 2), "--device", args.device,
                      "--no-progress", "--out", str(run)]  # fmt: skip
    t0 = time.perf_counter()
    for cmd in (first, common + ["--resume", "--steps", str(args.steps), "--no-progress", "--out", str(run)]):
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])}… exited {proc.returncode}: {proc.stderr[-1500:]}")
    seconds = time.perf_counter() - t0  # includes two start-ups: a floor, not the loop's speed
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    finite = steps == sorted(set(steps)) and all(math.isfinite(r["d_loss"]) for r in rows)
    note = "img/s includes two start-ups"
    return {"run": name, "train_img_s": args.steps * BATCH / seconds, "losses_finite": finite, "note": note}


def serve_check(models: Path, rows: list[dict]) -> str:
    """Serve the exports (where BentoML is installed); compare one served batch with ONNX Runtime on CPU."""
    try:
        import bentoml  # noqa: F401
        import httpx
    except ImportError as exc:
        return f"serving skipped: {exc.name} is not installed"
    import onnxruntime as ort

    from benchmarks.common import ServeProcess
    from gancore.contract import to_uint8

    server = ServeProcess(models)
    try:
        server.wait_ready()
        worst = 0
        for path in sorted(models.glob("*.onnx")):
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            meta = sess.get_modelmeta().custom_metadata_map
            feeds = _inputs(int(meta["latent_dim"]), int(meta["num_classes"]))
            cpu = to_uint8(sess.run(None, feeds)[0])
            r = httpx.post(  # the service picks CUDAExecutionProvider when onnxruntime offers it
f"{server.url}/generate", json={"model": path.stem, "count": BATCH, "seed": 0,
                                                          "format": "npy"}, timeout=120)  # fmt: skip
            r.raise_for_status()
            served = np.load(io.BytesIO(r.content))  # uint8 [N, H, W, C], as to_uint8's
            worst = max(worst, int(np.abs(served.astype(int) - cpu.astype(int)).max()))
        return f"served {len(rows)} exports: max |uint8 diff| served vs ONNX Runtime CPU = {worst}"
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="generator steps per training run")
    p.add_argument("--calls", type=int, default=50, help="timed inference calls per generator")
    p.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    p.add_argument("--recipes", type=lambda s: s.split(","), default=["dcgan", "wgan", "wgan-gp", "cgan"])
    p.add_argument("--device", default="cuda", help="cpu: a smoke run of this script's own code, no GPU")
    args = p.parse_args(argv)
    try:
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        print(f"gpu_check: {exc.name} is not installed", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device (torch.version.cuda = "
              f"{torch.version.cuda})", file=sys.stderr)  # fmt: skip
        return 2
    gpus = (
        f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}" if args.device == "cuda" else "CPU"
    )
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__} (CUDA "
          f"{torch.version.cuda}), {gpus}; onnxruntime {ort.__version__} {ort.get_available_providers()}; "
          f"{os.cpu_count()} CPUs; {args.steps} steps at 32x32x1 (digits), width 64, batch {BATCH}",
          flush=True)  # fmt: skip
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    plan = [(r, prec) for r in args.recipes for prec in ("fp32", "bf16")]
    plan += [("wgan-gp", "fp16")] if "wgan-gp" in args.recipes else []
    rows: list[dict] = []
    from training.export import export

    for recipe, precision in [*plan, ("torchrun", "fp32")]:
        name = f"{recipe}-{precision}"
        t0 = time.perf_counter()
        try:
            row = torchrun(work, args) if recipe == "torchrun" else train(name, recipe, precision, work, args)
            report = export(work / row["run"], models / f"{row['run']}.onnx")
            row["export_max_abs_diff"] = max(report.max_abs_diff.values())
            compare_generators(work / row["run"], models / f"{row['run']}.onnx", row, args)
        except Exception as exc:  # one failing run must not hide the others' figures
            row = {"run": name, "error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(f"# {name}: {json.dumps(row)}", flush=True)
    serving = serve_check(models, rows)

    cols = ["run", "train_img_s", "losses_finite", "export_max_abs_diff", "torch_gpu_img_s", "ort_cpu_img_s",
            "max_u8_cpu_vs_gpu", "ort_cuda_img_s", "max_u8_ort_cuda_vs_cpu", "seconds"]  # fmt: skip

    def fmt(v: object) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.1e}" if abs(v) < 0.01 and v else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    print("\n| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
    for row in rows:
        if "error" in row or "note" in row:
            print(f"- {row['run']}: {row.get('error') or row.get('note')}")
    print(f"- {serving}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("- ONNX Runtime CUDA: skipped (this onnxruntime has no CUDAExecutionProvider)")
    elif any("ort_cuda" in row for row in rows):
        print("- ONNX Runtime CUDA: skipped (CUDAExecutionProvider could not load; the session used the CPU)")
    return 1 if any("error" in row or not row.get("losses_finite") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
