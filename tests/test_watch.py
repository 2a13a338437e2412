"""Watching a run: TensorBoard event files read back with TensorBoard's own reader, --eval-every's figures
and best.pt, export --checkpoint best, and a resumed run whose curves continue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import TINY, run_cli
from training.export import load_generator

SCALARS = {
    "loss/critic", "loss/generator", "critic/real_score", "critic/fake_score", "grad_norm/G", "grad_norm/D",
    "lr/G", "lr/D", "speed/images_per_s", "speed/data_wait_share",
}  # fmt: skip


def events(run):
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def train(run, *args):
    return run_cli("training", "train", "--recipe", "wgan-gp", *TINY, "--log-every", "5", "--sample-every",
                   "20", "--eval-samples", "200", "--ema-decay", "0.9", "--out", str(run), *args)  # fmt: skip


@pytest.mark.slow
def test_events_snapshots_best_and_a_resumed_run(tmp_path):
    run = tmp_path / "run"
    train(run, "--steps", "40", "--eval-every", "20", "--keep-every", "20")
    ea = events(run)
    assert set(ea.Tags()["scalars"]) >= SCALARS
    assert "loss/penalty" in ea.Tags()["scalars"]  # WGAN-GP's gradient penalty
    assert [e.step for e in ea.Scalars("loss/critic")] == list(range(5, 45, 5))
    assert all(np.isfinite(e.value) and e.value > 0 for e in ea.Scalars("speed/images_per_s"))
    assert [e.step for e in ea.Images("samples")] == [20, 40]
    for kind in ("ema", "raw"):
        assert [e.step for e in ea.Scalars(f"eval/{kind}/frechet_ratio")] == [20, 40]
        assert {f"eval/{kind}/recall", f"eval/{kind}/coverage", f"eval/{kind}/ndb_k"} <= set(
            ea.Tags()["scalars"]
        )

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    snaps = [r for r in rows if "eval" in r]
    assert [r["step"] for r in snaps] == [20, 40] and set(snaps[0]["eval"]) == {"ema", "raw"}
    fr = [r["eval"]["ema"]["frechet_ratio"] for r in snaps]
    best_step = snaps[-1]["best_step"]
    assert best_step == (20 if fr[0] <= fr[1] else 40)
    # best.pt is the checkpoint of that step: the same shipped weights as the copy --keep-every made of it
    best = load_generator(run, "best")[0].state_dict()
    kept = load_generator(run, str(run / "checkpoints" / f"step-{best_step:06d}.pt"))[0].state_dict()
    assert all(np.array_equal(best[k].numpy(), kept[k].numpy()) for k in best)
    out = run_cli(
        "training", "export", str(run), "--out", str(tmp_path / "best.onnx"), "--checkpoint", "best"
    )
    assert "max |diff|" in out.stdout
    # the eval's CPU is counted apart from training's
    assert snaps[-1]["eval_cpu_s"] > 0

    run_cli("training", "train", "--resume", "--steps", "60", "--no-progress", "--out", str(run))
    ea = events(run)
    assert [e.step for e in ea.Scalars("loss/critic")] == list(range(5, 65, 5))  # continued, none twice
    assert [e.step for e in ea.Scalars("eval/ema/frechet_ratio")] == [20, 40, 60]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if "eval" in r][-1]
    values = [r["eval"]["ema"]["frechet_ratio"] for r in rows if "eval" in r]
    assert final["best_step"] == [20, 40, 60][int(np.argmin(values))]  # the best survives the resume


def test_rgba_grids_are_shown_over_a_checkerboard():
    from training.watch import checkerboard

    clear = np.zeros((1, 16, 16, 4), dtype=np.uint8)
    shown = checkerboard(clear)
    assert shown.shape == (1, 16, 16, 3) and set(np.unique(shown)) == {153, 204}
    opaque = np.full((1, 16, 16, 4), 255, dtype=np.uint8)
    opaque[..., 0] = 10
    assert (checkerboard(opaque)[..., 0] == 10).all()


def test_bad_watch_flags_exit_2(tmp_path):
    proc = run_cli("training", "train", "--best-metric", "beauty", "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "--best-metric" in proc.stderr
    train(tmp_path / "r", "--steps", "2", "--eval-every", "0", "--no-tensorboard")
    assert not (tmp_path / "r" / "tensorboard").exists() and not (tmp_path / "r" / "best.pt").exists()
    export = ["training", "export", str(tmp_path / "r"), "--out", str(tmp_path / "x.onnx")]
    proc = run_cli(*export, "--checkpoint", "best", check=False)
    assert proc.returncode == 2 and "--checkpoint best" in proc.stderr and "--eval-every" in proc.stderr
