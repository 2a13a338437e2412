"""The training command line: flags derived from the config dataclasses, --config files, the shipped models'
config files, --device / --precision and their errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_cli
from training.__main__ import _add_train_args, main
from training.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    override,
    preset,
)
from training.export import export
from training.flags import SECTIONS, config_flags, config_from_args
from training.trainer import Trainer

SHIPPED = sorted(p.stem for p in (ROOT / "models").glob("*.onnx"))


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    _add_train_args(p)
    return p.parse_args(["--out", "unused", *argv])


def parser_actions() -> dict[str, argparse.Action]:
    p = argparse.ArgumentParser()
    _add_train_args(p)
    return {opt: a for a in p._actions for opt in a.option_strings}


@pytest.mark.parametrize(
    "cls", [TrainConfig, ModelConfig, ObjectiveConfig, OptimConfig, DataConfig, AugmentConfig]
)
def test_every_config_field_is_a_flag_with_its_type_choices_and_help(cls):
    actions = parser_actions()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in SECTIONS or f.metadata.get("cli") is False:
            continue
        action = actions[f.metadata.get("flag", "--" + f.name.replace("_", "-"))]
        assert f.metadata["help"] and action.help.startswith(f.metadata["help"].replace("%", "%%")), f.name
        if hints[f.name] is bool:
            assert isinstance(action, argparse.BooleanOptionalAction), f.name
        elif typing.get_origin(hints[f.name]) is typing.Literal:
            assert tuple(action.choices) == typing.get_args(hints[f.name]), f.name
        assert action.default is None, f.name  # an absent flag never overrides the preset or the file


def test_flags_parse_to_the_config():
    argv = [
        "--recipe",
        "wgan-gp",
        "--conditional",
        "--no-minibatch-std",
        "--lr-g",
        "3e-4",
        "--objective",
        "bce",
        "--optimizer",
        "rmsprop",
        "--image-size",
        "64",
        "--precision",
        "bf16",
        "--device",
        "cpu",
    ]
    cfg = config_from_args(parse(*argv))
    assert cfg == override(
        preset("wgan-gp"),
        conditional=True,
        minibatch_std=False,
        lr_g=3e-4,
        kind="bce",
        name="rmsprop",
        image_size=64,
        precision="bf16",
        device="cpu",
    )


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_file_sets_settings_and_flags_override_it(tmp_path, suffix):
    path = tmp_path / f"c{suffix}"
    if suffix == ".json":
        path.write_text(
            json.dumps(
                {"recipe": "wgan", "steps": 7, "model": {"g_width": 8, "pack": 2}, "optim": {"lr_d": 1}}
            )
        )
    else:
        path.write_text('recipe = "wgan"\nsteps = 7\n[model]\ng_width = 8\npack = 2\n[optim]\nlr_d = 1\n')
    cfg = config_from_args(parse("--config", str(path), "--steps", "9"))
    # the file's recipe picks the preset (RMSprop, clipping), its settings apply on top, the flag wins
    assert cfg == override(preset("wgan"), steps=9, g_width=8, pack=2, lr_d=1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"model": {"g_widht": 8}}, "unknown setting 'model.g_widht'"),
        ({"steps": "ten"}, "steps must be int"),
        ({"model": {"d_norm": "group"}}, "model.d_norm must be one of"),
        ({"model": 3}, "model must be a table"),
    ],
)
def test_bad_config_file_exits_2_naming_the_setting(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--config" in err and message in err


def split_by_record(effective: dict, recorded: dict, defaults: dict, path: str = "") -> list[str]:
    """Differences between an effective config and a recorded one; a setting the record lacks (added to the
    code after the model was trained) must hold its default, i.e. be off as it was then."""
    wrong = []
    for key, value in effective.items():
        if isinstance(value, dict):
            wrong += split_by_record(value, recorded.get(key, {}), defaults[key], f"{path}{key}.")
        elif key in recorded and recorded[key] != value:
            wrong.append(f"{path}{key}: {value!r}, recorded {recorded[key]!r}")
        elif key not in recorded and value != defaults[key]:
            wrong.append(f"{path}{key}: {value!r}, not recorded (default {defaults[key]!r})")
    return wrong + [f"{path}{key}: recorded but unknown" for key in recorded if key not in effective]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_are_reproducible_from_their_config_files(tmp_path, name):
    """configs/NAME.json, resolved against its data set, is exactly the configuration recorded in the card."""
    recorded = json.loads((ROOT / "models" / f"{name}.json").read_text())["config"]
    cfg = config_from_args(parse("--config", str(ROOT / "configs" / f"{name}.json")))
    effective = json.loads(Trainer(cfg, tmp_path).cfg.to_json())
    # settings added since the models were trained are pinned to what they were trained with; models trained
    # since record them ("auto" resolved to the CPU: these machines have no GPU)
    assert (effective.pop("device"), effective.pop("precision")) == ("cpu", "fp32")
    assert recorded.pop("device", "cpu") in ("cpu", "auto") and recorded.pop("precision", "fp32") == "fp32"
    assert split_by_record(effective, recorded, dataclasses.asdict(TrainConfig())) == []


def test_every_config_file_is_a_shipped_model_with_valid_export_options(tmp_path):
    from scripts.train_models import split_config

    assert sorted(p.stem for p in (ROOT / "configs").glob("*.json")) == SHIPPED
    for name in SHIPPED:
        _, export = split_config(ROOT / "configs" / f"{name}.json")
        card = json.loads((ROOT / "models" / f"{name}.json").read_text())
        assert export.get("truncation", 1.0) == card["truncation"], name  # the options the file was made with
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steps": 2, "export": {"truncatoin": 0.5}}))
    proc = run_cli("training", "train", "--config", str(bad), "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "export must be a table of export options (truncation)" in proc.stderr


def test_device_cuda_without_cuda_exits_2_naming_the_flag_before_any_work(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    # a missing data set would be the first error if the device were checked after loading data
    argv = ["train", "--device", "cuda", "--dataset", f"folder:{tmp_path}/none", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "CUDA is not available" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu:0"])
def test_bad_device_spelling_exits_2(tmp_path, capsys, device):
    assert main(["train", "--device", device, "--out", str(tmp_path / "r")]) == 2
    assert "--device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err


def test_resume_refuses_settings_that_would_change_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.json").write_text(preset("dcgan").to_json())
    assert main(["train", "--resume", "--out", str(run), "--lr-g", "1e-3"]) == 2
    assert "--lr-g cannot change on --resume" in capsys.readouterr().err


def test_resumable_flags_are_marked_in_the_dataclasses():
    resumable = {fl.flag for fl in config_flags() if fl.resumable}
    assert {"--steps", "--device", "--precision", "--threads"} <= resumable
    assert not {"--seed", "--batch-size", "--lr-g", "--recipe"} & resumable


def small(recipe: str, **changes) -> TrainConfig:
    base = dict(
        image_size=16,
        g_width=16,
        d_width=16,
        batch_size=16,
        steps=2,
        sample_every=2,
        checkpoint_every=2,
        device="cpu",
    )
    return override(preset(recipe), **{**base, **changes})


@pytest.mark.parametrize("recipe", ["dcgan", "wgan", "wgan-gp", "cgan"])
def test_every_recipe_trains_in_bf16_on_the_cpu_and_exports_float32(tmp_path, recipe):
    fp32 = Trainer(small(recipe), tmp_path / "fp32")
    fp32.run(progress=False)
    bf16 = Trainer(small(recipe, precision="bf16"), tmp_path / "bf16")
    bf16.run(progress=False)
    rows = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in rows)
    assert all(p.dtype == torch.float32 for p in bf16.G.parameters())  # master weights stay float32
    # autocast really ran: the same seed trains other weights than in float32
    assert any(not torch.equal(a, b) for a, b in zip(fp32.G.parameters(), bf16.G.parameters(), strict=True))
    report = export(tmp_path / "bf16", tmp_path / "m.onnx")  # float32 graph, parity-checked as always
    assert max(report.max_abs_diff.values()) < 1e-4


def test_fp16_uses_a_gradient_scaler_and_resumes_exactly(tmp_path):
    full = Trainer(small("wgan-gp", steps=4, precision="fp16"), tmp_path / "full")
    full.run(progress=False)
    assert full.scaler_d.is_enabled() and full.scaler_g.is_enabled()
    part = Trainer(small("wgan-gp", steps=2, precision="fp16"), tmp_path / "part")
    part.run(progress=False)
    resumed = Trainer(small("wgan-gp", steps=4, precision="fp16"), tmp_path / "part")
    resumed.load()
    assert resumed.scaler_d.get_scale() == part.scaler_d.get_scale()
    resumed.run(progress=False)
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert all(torch.isfinite(p).all() for p in full.D.parameters())


def test_losses_stay_on_the_device_between_log_steps(tmp_path):
    t = Trainer(small("dcgan"), tmp_path)
    losses = t.train_step()
    assert all(isinstance(v, torch.Tensor) and v.device == t.device for v in losses.values())


def test_checkpoint_from_another_device_type_resumes_with_a_warning(tmp_path, capsys):
    """A GPU checkpoint holds a CUDA generator state: on a CPU the run continues, from a reseeded stream."""
    Trainer(small("dcgan", steps=2), tmp_path).run(progress=False)
    blob = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    blob["rng_device"], blob["rng"] = "cuda", torch.zeros(16, dtype=torch.uint8)  # a CUDA Philox state
    torch.save(blob, tmp_path / "checkpoint.pt")
    t = Trainer(small("dcgan", steps=3), tmp_path)
    t.load()
    assert "checkpoint made on cuda" in capsys.readouterr().err
    t.run(progress=False)
    assert t.state.step == 3


def test_config_file_path_errors_are_named(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "--config" in capsys.readouterr().err
    bad = Path(tmp_path / "bad.toml")
    bad.write_text("steps = [")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_a_new_config_field_becomes_a_flag_without_code(monkeypatch):
    """What issue-style additions need: a field with help metadata is a flag (bool, str, tuple)."""
    import training.flags

    @dataclasses.dataclass(frozen=True)
    class Extended(TrainConfig):
        flip_vertical: bool = dataclasses.field(default=False, metadata={"help": "flip real images"})
        policy: typing.Literal["none", "color"] = dataclasses.field(default="none", metadata={"help": "p"})
        layers: tuple[int, ...] = dataclasses.field(default=(), metadata={"help": "l"})

    monkeypatch.setattr(training.flags, "TrainConfig", Extended)
    args = parse("--flip-vertical", "--policy", "color", "--layers", "1", "2")
    given = {fl.flag: v for fl, v in training.flags.given_flags(args).items()}
    assert given == {"--flip-vertical": True, "--policy": "color", "--layers": (1, 2)}
    with pytest.raises(SystemExit):
        parse("--policy", "shape")
