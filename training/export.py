"""Export a trained generator to the project's ONNX contract, and prove it matches PyTorch.

Contract (``gancore.contract``): the tensor names, dtypes and shapes of ``gancore.contract.tensors`` and
the metadata of ``gancore.contract.ModelMetadata``, with the contract version the service implements.

Truncation (an export option): the graph may scale ``z`` by ψ < 1 before the generator, i.e. sample at a
lower temperature, N(0, ψ²I) instead of N(0, I) (Kingma & Dhariwal 2018). Like BigGAN's truncation trick
(which resamples large |z| instead) it trades variety for fidelity. The input stays standard-normal noise,
so the seed contract is unchanged; ψ is recorded in the metadata as ``truncation``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from gancore.contract import CONTRACT_VERSION, IMAGE, ModelMetadata, feeds, input_names
from gancore.files import write_atomic
from training import __version__
from training.config import TrainConfig
from training.networks import build_generator
from training.trainer import CHECKPOINT, CONFIG, RunState
from training.watch import BEST

PARITY_BATCHES = (1, 7, 64)
PARITY_TOLERANCE = 1e-4
OPSET = 18


class ExportError(RuntimeError):
    """The export is not a valid generator of the contract; the message says why."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: dict[int, float]
    metadata: dict[str, str]


class _Unconditional(torch.nn.Module):
    def __init__(self, g: torch.nn.Module, truncation: float = 1.0):
        super().__init__()
        self.g, self.truncation = g, truncation
        # The contract's image is in [-1, 1]: a generator with a linear output (--arch resnet, as in R3GAN)
        # is clipped in the graph; one that ends in Tanh already is, and its graph stays as it was.
        self.clip = not getattr(g, "BOUNDED_OUTPUT", True)

    def _scaled(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.truncation == 1.0 else z * self.truncation

    def _bounded(self, image: torch.Tensor) -> torch.Tensor:
        return image.clamp(-1.0, 1.0) if self.clip else image

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._bounded(self.g(self._scaled(z)))


class _Conditional(_Unconditional):
    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self._bounded(self.g(self._scaled(z), label))


def checkpoint_file(run_dir: Path, checkpoint: str = "last") -> Path:
    """The checkpoint ``--checkpoint`` names: ``last`` (RUN/checkpoint.pt), ``best`` (RUN/best.pt, kept by
    ``--eval-every``), or a file (e.g. RUN/checkpoints/step-002000.pt); ValueError naming the flag."""
    run_dir = Path(run_dir)
    path = {"last": run_dir / CHECKPOINT, "best": run_dir / BEST}.get(checkpoint, Path(checkpoint))
    if not path.is_file():
        hint = " (train with --eval-every N to keep one)" if checkpoint == "best" else ""
        raise ValueError(f"--checkpoint {checkpoint}: {path} does not exist{hint}")
    return path


def load_generator(run_dir: Path, checkpoint: str = "last") -> tuple[torch.nn.Module, TrainConfig, RunState]:
    """The generator to ship from a run folder (EMA weights when the run kept them), in eval mode."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists() or not (run_dir / CHECKPOINT).exists():
        raise ExportError(f"{run_dir} is not a training run folder (needs {CONFIG} and {CHECKPOINT})")
    cfg = TrainConfig.load(run_dir / CONFIG)
    path = checkpoint_file(run_dir, checkpoint)
    blob = torch.load(path, map_location="cpu", weights_only=True)  # GPU runs export here
    g = build_generator(cfg.model)
    g.load_state_dict(blob["G_ema"] if blob.get("G_ema") else blob["G"])
    return g.eval(), cfg, RunState(**blob["state"])


def metadata_for(
    cfg: TrainConfig, state: RunState, class_names: list[str], truncation: float = 1.0
) -> ModelMetadata:
    m = cfg.model
    return ModelMetadata(
        recipe=cfg.recipe,
        objective=cfg.objective.kind + ("-gp" if cfg.objective.gp_weight > 0 else ""),
        conditional=m.conditional,
        latent_dim=m.latent_dim,
        num_classes=m.num_classes if m.conditional else 0,
        class_names=class_names if m.conditional else [],
        image_shape=[m.channels, m.image_size, m.image_size],
        dataset=cfg.dataset,
        steps=state.step,
        seed=cfg.seed,
        training_seconds=round(state.wall_seconds, 1),
        training_cpu_seconds=round(state.cpu_seconds, 1),
        version=__version__,
        contract_version=CONTRACT_VERSION,
        config=json.dumps(asdict(cfg), sort_keys=True),
        truncation=float(truncation),
    )


def check_truncation(truncation: float) -> float:
    """ψ as a float in (0, 1]; ExportError naming the option otherwise."""
    try:
        psi = float(truncation)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"--truncation must be a number in (0, 1], got {truncation!r}") from exc
    if not 0.0 < psi <= 1.0:  # also rejects NaN
        raise ExportError(f"--truncation must be in (0, 1] (1 = no truncation), got {truncation}")
    return psi


def export(
    run_dir: Path,
    out: Path,
    class_names: list[str] | None = None,
    truncation: float = 1.0,
    checkpoint: str = "last",
) -> ExportReport:
    """Export the run's generator to ``out`` atomically; raise ExportError unless it is valid and matches.

    ``truncation`` ψ in (0, 1]: the exported graph samples ``G(ψ·z)`` (1: the generator as trained).
    """
    truncation = check_truncation(truncation)
    g, cfg, state = load_generator(run_dir, checkpoint)
    m = cfg.model
    if class_names is None:
        names_file = Path(run_dir) / "class_names.json"
        class_names = json.loads(names_file.read_text()) if names_file.exists() else []
    if m.conditional and len(class_names) != m.num_classes:
        class_names = [str(i) for i in range(m.num_classes)]

    batch = torch.export.Dim("batch", min=1, max=4096)
    z = torch.randn(2, m.latent_dim)
    inputs = input_names(m.conditional)
    if m.conditional:
        module: torch.nn.Module = _Conditional(g, truncation)
        args: tuple = (z, torch.eye(m.num_classes)[:2])
    else:
        module, args = _Unconditional(g, truncation), (z,)
    dynamic = {name: {0: batch} for name in inputs}
    module.eval()
    try:
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=inputs,
            output_names=[IMAGE],
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            verbose=False,
        )
    except Exception as exc:  # the exporter raises many types; report them uniformly
        raise ExportError(f"torch.onnx.export failed: {exc}") from exc
    model = program.model_proto
    metadata = metadata_for(cfg, state, class_names, truncation).to_props()
    onnx.helper.set_model_props(model, metadata)
    model.producer_name = "ganserve"
    model.doc_string = f"{cfg.recipe} generator trained on {cfg.dataset} by ganserve {__version__}"
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the export: {exc}") from exc

    data = model.SerializeToString()
    diffs = check_parity(module, data, m.latent_dim, m.num_classes if m.conditional else 0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, data, mode=0o644)
    return ExportReport(out, diffs, metadata)


def check_parity(
    module: torch.nn.Module, model_bytes: bytes, latent_dim: int, num_classes: int
) -> dict[int, float]:
    """Run ONNX Runtime and PyTorch on the same inputs; raise ExportError past the tolerance."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    diffs = {}
    for n in PARITY_BATCHES:
        z = rng.standard_normal((n, latent_dim), dtype=np.float32)
        label = None
        if num_classes:
            label = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, n)]
        args = [torch.from_numpy(z)] + ([torch.from_numpy(label)] if label is not None else [])
        with torch.no_grad():
            expected = module(*args).numpy()
        (got,) = session.run([IMAGE], feeds(z, label))
        if got.shape != expected.shape:
            raise ExportError(f"batch {n}: ONNX output shape {got.shape} != PyTorch {expected.shape}")
        diffs[n] = float(np.abs(got - expected).max())
        if not diffs[n] <= PARITY_TOLERANCE:
            raise ExportError(
                f"batch {n}: ONNX Runtime differs from PyTorch by {diffs[n]:.2e} > {PARITY_TOLERANCE:.0e}"
            )
    return diffs
