"""Model cards of RGBA models (checkerboard composite), kept checkpoints and the quality-against-time curve.

Tiny runs: digits at 16×16 (classes: evaluator figures) and a folder of 16×16 RGBA sprites (no classes:
autoencoder figures), generator and critic width 8, a few steps.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancore.generator import GeneratorModel
from gancore.imaging import encode_png
from gancore.providers import CPU
from tests.conftest import run_cli
from tests.support.sprites import write_sprites
from training.cards import CHECKER_GREYS, checkerboard, composite_on_checkerboard, sample_grid
from training.config import override, preset
from training.flags import config_flags
from training.trainer import CHECKPOINT, Trainer, kept_checkpoint

TINY = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--batch-size", "16", "--no-progress"]
FAST_EVAL = ["--samples", "100", "--evaluator-epochs", "1", "--autoencoder-steps", "20"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluators")


def _png(path) -> Image.Image:
    img = Image.open(path)
    img.load()
    return img


# ---- the checkerboard composite -------------------------------------------------------------------------


def test_checkerboard_shows_where_alpha_is_zero_and_colour_where_it_is_255():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 56, 4), dtype=np.uint8)
    alpha = rgba[..., 3]
    alpha[:, :20] = 0  # transparent: whatever colour is hidden there
    alpha[:, 20:40] = 255  # opaque
    alpha[:, 40:] = 128  # half
    out = composite_on_checkerboard(rgba)
    board = checkerboard(40, 56)
    assert out.shape == (40, 56, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, :20], board[:, :20])
    assert np.array_equal(out[:, 20:40], rgba[:, 20:40, :3])
    half = out[:, 40:].astype(int)
    expect = (rgba[:, 40:, :3].astype(int) + board[:, 40:].astype(int)) / 2
    assert np.abs(half - expect).max() <= 1
    # Two light greys in 8-pixel squares, so transparency reads as a pattern, not as one colour.
    assert set(np.unique(board)) == set(CHECKER_GREYS)
    assert (board[0, 0] != board[0, 8]).all() and (board[0, 0] == board[0, 7]).all()
    assert (board[0, 0] == board[8, 8]).all() and (board[0, 0] != board[8, 0]).all()
    with pytest.raises(ValueError, match="expected uint8"):
        composite_on_checkerboard(rgba[..., :3])


# ---- --keep-every ---------------------------------------------------------------------------------------


def _digits_cfg(**changes):
    base = dict(image_size=16, g_width=8, d_width=8, batch_size=16, ema_decay=0.9, log_every=1)
    return override(preset("dcgan"), **base, **changes)


def _blob(path):
    return torch.load(path, weights_only=True)


def _same_weights(a, b) -> bool:
    return all(torch.equal(a[k][n], b[k][n]) for k in ("G", "D", "G_ema") for n in a[k])


def test_keep_every_keeps_checkpoints_and_changes_no_weight(tmp_path):
    assert "--keep-every" in {fl.flag for fl in config_flags() if fl.resumable}
    Trainer(_digits_cfg(steps=5, keep_every=2), tmp_path / "kept").run(progress=False)
    Trainer(_digits_cfg(steps=5), tmp_path / "plain").run(progress=False)
    Trainer(_digits_cfg(steps=2), tmp_path / "two").run(progress=False)
    kept, plain = _blob(tmp_path / "kept" / CHECKPOINT), _blob(tmp_path / "plain" / CHECKPOINT)
    assert _same_weights(kept, plain) and kept["state"]["step"] == 5
    for key in ("opt_g", "opt_d"):  # the optimizers' moments too: a resumed run would continue alike
        for n, s in plain[key]["state"].items():
            assert all(torch.equal(v, kept[key]["state"][n][k]) for k, v in s.items() if torch.is_tensor(v))
    assert torch.equal(kept["rng"], plain["rng"])
    files = sorted(p.name for p in (tmp_path / "kept" / "checkpoints").iterdir())
    assert files == ["step-000002.pt", "step-000004.pt"]  # step 5 (the end) is checkpoint.pt itself
    assert not (tmp_path / "plain" / "checkpoints").exists()
    # A kept checkpoint holds what a run of that many steps ends with.
    at2 = _blob(kept_checkpoint(tmp_path / "kept", 2))
    assert at2["state"]["step"] == 2 and _same_weights(at2, _blob(tmp_path / "two" / CHECKPOINT))
    at4 = _blob(kept_checkpoint(tmp_path / "kept", 4))
    assert 0 < at2["state"]["cpu_seconds"] < at4["state"]["cpu_seconds"] < kept["state"]["cpu_seconds"]


def test_keep_every_rejects_a_negative_interval(tmp_path):
    proc = run_cli("training", "train", *TINY, "--keep-every", "-1", "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and "--keep-every must be 0 (off) or more" in proc.stderr


# ---- the curve and the cards ----------------------------------------------------------------------------


def test_curve_of_a_conditional_digits_run_and_its_card(tmp_path, cache):
    run, curve = tmp_path / "run", tmp_path / "curve.jsonl"
    run_cli("training", "train", "--recipe", "cgan", *TINY, "--steps", "6", "--keep-every", "2",
            "--ema-decay", "0.9", "--out", str(run))  # fmt: skip
    metrics = (run / "metrics.jsonl").read_bytes()
    proc = run_cli("training", "curve", str(run), *FAST_EVAL, "--cache-dir", str(cache), "--json", str(curve),
                   "--plot", str(tmp_path / "curve.png"))  # fmt: skip
    rows = [json.loads(line) for line in curve.read_text().splitlines()]
    # Kept steps 2 and 4, and the final checkpoint (6); steps and training CPU time grow.
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(a["cpu_s"] < b["cpu_s"] for a, b in zip(rows, rows[1:], strict=False)) and rows[0]["cpu_s"] > 0
    final = _blob(run / CHECKPOINT)["state"]["cpu_seconds"]
    assert rows[-1]["cpu_s"] == pytest.approx(final, abs=1e-3)
    for r in rows:
        assert r["generator"] == "ema" and r["feature_space"] == "evaluator" and r["samples"] == 100
        fig, real = r["figures"], r["real"]
        assert 0 <= fig["label_accuracy"] <= 1 and 0 <= fig["ndb_k"] <= 1 and fig["frechet_ratio"] > 0
        assert set(fig) == set(real) and real["frechet_ratio"] == 1.0 and 0.3 < real["label_accuracy"] <= 1
        assert 0.5 < real["recall"] <= 1  # held-out real data against the other half
    assert rows[0]["figures"] != rows[-1]["figures"]  # different weights, different figures
    assert "label acc" in proc.stdout and "real" in proc.stdout.splitlines()[-2]
    assert _png(tmp_path / "curve.png").format == "PNG"
    assert (run / "metrics.jsonl").read_bytes() == metrics  # the curve reads the run, changes nothing

    model = tmp_path / "models" / "tiny-cgan.onnx"
    run_cli("training", "export", str(run), "--out", str(model))
    evaluate = ["training", "evaluate", str(model), *FAST_EVAL, "--cache-dir", str(cache), "--card"]
    bad = run_cli(*evaluate[:-1], "--curve", str(curve), check=False)
    assert bad.returncode == 2 and "add --card" in bad.stderr
    run_cli(*evaluate)
    md, card = model.with_suffix(".md").read_text(), json.loads(model.with_suffix(".json").read_text())
    png = model.with_suffix(".png").read_bytes()
    # A grey model's grid is the plain grid, as before; the rows are named; no curve without --curve.
    assert png == encode_png(sample_grid(GeneratorModel(model, [CPU], threads=1)), compress_level=9)
    assert "Rows, top to bottom: row 1: 0; row 2: 1;" in md and "checkerboard" not in md
    assert (
        "curve" not in card
        and "## Quality against training time" not in md
        and not (model.parent / "tiny-cgan-curve.png").exists()
    )

    run_cli(*evaluate, "--curve", str(curve))
    with_md, with_card = (
        model.with_suffix(".md").read_text(),
        json.loads(model.with_suffix(".json").read_text()),
    )
    assert with_card["curve"] == rows and {k: v for k, v in with_card.items() if k != "curve"} == card
    assert with_md.startswith(md)  # the card as before, then the curve
    section = with_md[len(md) :]
    assert (
        "## Quality against training time" in section
        and "![quality against training time](tiny-cgan-curve.png)" in section
    )
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[1:]] == ["| 2", "| 4", "| 6", "| real vs real"]
    assert _png(model.parent / "tiny-cgan-curve.png").size[0] > 400

    # Re-evaluating the same file (scripts/evaluate_models.sh) keeps its curve; notes join the card.
    notes = tmp_path / "notes.md"
    notes.write_text("Weight clipping levels off at **KL 0.05** here.\n")
    bad = run_cli(*evaluate[:-1], "--notes", str(notes), check=False)
    assert bad.returncode == 2 and "add --card" in bad.stderr
    run_cli(*evaluate, "--notes", str(notes))
    run_cli(*evaluate)
    kept_md, kept = model.with_suffix(".md").read_text(), json.loads(model.with_suffix(".json").read_text())
    assert kept["curve"] == rows and kept["notes"] == "Weight clipping levels off at **KL 0.05** here."
    assert "## Notes\n\nWeight clipping levels off at **KL 0.05** here.\n" in kept_md
    assert kept_md.index("## Notes") < kept_md.index("## Quality against training time")
    # Another file under the same name (a new export) starts without them: they described the old one.
    run_cli("training", "export", str(run), "--out", str(model), "--truncation", "0.5")
    run_cli(*evaluate)
    fresh_md, fresh = model.with_suffix(".md").read_text(), json.loads(model.with_suffix(".json").read_text())
    assert fresh["sha256"] != kept["sha256"] and "curve" not in fresh and "notes" not in fresh
    assert "## Notes" not in fresh_md and "## Quality against training time" not in fresh_md


def test_curve_and_card_of_an_rgba_run_without_classes(tmp_path, cache):
    data = write_sprites(tmp_path / "data", count=48, size=16)
    run, curve = tmp_path / "run", tmp_path / "curve.jsonl"
    run_cli("training", "train", "--recipe", "dcgan", "--dataset", f"folder:{data}", "--channels", "4", *TINY,
            "--steps", "4", "--keep-every", "2", "--out", str(run))  # fmt: skip
    run_cli("training", "curve", str(run), *FAST_EVAL, "--cache-dir", str(cache), "--json", str(curve))
    rows = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]  # the final checkpoint is step 4 again: measured once
    assert rows[0]["cpu_s"] < rows[1]["cpu_s"]
    for r in rows:  # no classes: no label figures, the autoencoder's features
        assert r["generator"] == "G" and r["feature_space"] == "autoencoder"
        assert "label_accuracy" not in r["figures"] and "kl_to_real" not in r["figures"]
        assert {"ndb_k", "recall", "coverage", "precision", "frechet_ratio"} <= set(r["figures"])

    model = tmp_path / "models" / "tiny-rgba.onnx"
    run_cli("training", "export", str(run), "--out", str(model))
    run_cli("training", "evaluate", str(model), *FAST_EVAL, "--cache-dir", str(cache), "--card",
            "--curve", str(curve))  # fmt: skip
    grid = sample_grid(GeneratorModel(model, [CPU], threads=1))
    assert grid.shape[2] == 4
    shown = np.asarray(_png(model.with_suffix(".png")))
    assert shown.shape == (*grid.shape[:2], 3)  # the card's picture is RGB: the composite
    assert np.array_equal(shown, composite_on_checkerboard(grid))
    clear = grid[..., 3] == 0  # at least the grid's padding between images
    assert clear.sum() > 1000 and np.array_equal(shown[clear], checkerboard(*grid.shape[:2])[clear])
    opaque = grid[..., 3] == 255
    assert np.array_equal(shown[opaque], grid[..., :3][opaque])
    md, card = model.with_suffix(".md").read_text(), json.loads(model.with_suffix(".json").read_text())
    assert "checkerboard" in md and "Rows, top to bottom" not in md
    assert card["curve"] == rows and "![quality against training time](tiny-rgba-curve.png)" in md
    assert (model.parent / "tiny-rgba-curve.png").exists()


def test_curve_of_a_folder_without_a_run_fails_cleanly(tmp_path):
    proc = run_cli("training", "curve", str(tmp_path), check=False)
    assert proc.returncode == 2 and "holds no run" in proc.stderr
