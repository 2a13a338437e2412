"""Training under torchrun on the CPU: two gloo processes split the global batch and stay in step."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import run_torchrun
from tests.ddp_worker import CASES, small
from training.trainer import CHECKPOINT, Trainer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    run_torchrun("tests/ddp_worker.py", str(out))
    return out, json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_hold_identical_weights_after_every_step(ddp_runs, case):
    _, report = ddp_runs
    assert report[case]["local_batch"] == 8  # the global batch of 16 split in two
    assert report[case]["equal_after_each_step"] == [True] * 4


@pytest.mark.parametrize("case", list(CASES))
def test_two_process_checkpoint_resumes_exactly(ddp_runs, case):
    _, report = ddp_runs
    assert report[case]["resumed_from"] == 2
    assert report[case]["resume_equals_uninterrupted"]


def test_two_processes_train_what_one_trains_without_batch_statistics(ddp_runs, tmp_path):
    """No BatchNorm anywhere: split batch, shared noise and averaged gradients equal one process's step."""
    out, report = ddp_runs
    one = Trainer(small("wgan-gp-no-batchnorm", 4), tmp_path / "one")
    losses = []
    while one.state.step < 4:
        step = one.train_step()
        losses.append([step["d_loss"].item(), step["g_loss"].item()])
    two_losses = [x for step in report["wgan-gp-no-batchnorm"]["losses"] for x in step]
    assert two_losses == pytest.approx([x for step in losses for x in step], rel=1e-4, abs=1e-6)
    two = torch.load(out / "wgan-gp-no-batchnorm-full" / CHECKPOINT, weights_only=True)
    for name in ("G", "D"):
        for key, value in getattr(one, name).state_dict().items():
            # Adam turns float-rounding noise in near-zero gradients into steps of up to lr (1e-4), so the
            # bound is below one step; a wrong split moves most weights by about lr per step.
            torch.testing.assert_close(two[name][key], value, rtol=0, atol=5e-5, msg=f"{name}.{key}")


def test_only_rank_zero_writes(ddp_runs):
    out, _ = ddp_runs
    run = out / "dcgan-part"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # the last step of each part (log_every 10) once, not once per rank
