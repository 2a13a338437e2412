"""Quality of a generator against its real data, with and without class labels.

GANs fail silently (one digit, or mush, with healthy-looking losses), so every exported generator is
measured the same way: sample it as the service does (``gancore.contract.generate``: the seeded
noise contract and the uint8 post-processing) and compare the samples with the real data:

- class figures, by a classifier ensemble trained on the data set's classes (``evaluator``): label accuracy
  (conditional models), class histogram, classes holding ≥ 5% of the samples, KL(generated ‖ real);
- Fréchet distance and within-class diversity on features (``metrics``), beside real data of the samples'
  size;
- label-free mode-collapse figures (``label_free``): NDB/K and JS, precision/recall, density/coverage,
  near-duplicates and copies of training images, each beside held-out real data — in the evaluator's feature
  space, or for data without classes in the code of an autoencoder trained on the images (``autoencoder``);
- the targets they are held to (``targets``);
- the same figures for each checkpoint a run kept, against training time (``curve``).

Modules: ``cache`` (where trained networks live), ``evaluator``, ``autoencoder``, ``metrics``, ``label_free``,
``targets``, ``quality`` (all figures of one sample set, and the table), ``sampling`` (loading and sampling an
exported generator), ``curve`` (quality against training time). This package re-exports the public names
callers use.
"""

from training.evaluate.autoencoder import Autoencoder, AutoencoderSettings, get_autoencoder, train_autoencoder
from training.evaluate.cache import default_cache_dir
from training.evaluate.curve import (
    curve_lines,
    curve_markdown,
    kept_checkpoints,
    measure_curve,
    plot_curve,
    read_curve,
    sample_trainer,
)
from training.evaluate.evaluator import (
    EVALUATOR_VERSION,
    Evaluator,
    EvaluatorNet,
    EvaluatorSettings,
    get_evaluator,
    split_indices,
    train_evaluator,
)
from training.evaluate.label_free import (
    LabelFree,
    LabelFreeSettings,
    Reference,
    SetFigures,
    compare,
    fit_reference,
    ndb_test,
    set_figures,
)
from training.evaluate.metrics import frechet_distance, mean_pairwise_distance
from training.evaluate.quality import (
    Quality,
    RealFeatures,
    evaluator_for,
    format_table,
    has_classes,
    measure,
    real_features,
)
from training.evaluate.sampling import evaluate_model, load_for_evaluation, sample_model
from training.evaluate.targets import check_label_free_targets, check_targets

__all__ = [
    "EVALUATOR_VERSION", "Autoencoder", "AutoencoderSettings", "Evaluator", "EvaluatorNet",
    "EvaluatorSettings", "LabelFree", "LabelFreeSettings", "Quality", "RealFeatures", "Reference",
    "SetFigures", "check_label_free_targets", "check_targets", "compare", "curve_lines", "curve_markdown",
    "default_cache_dir", "evaluate_model", "evaluator_for", "fit_reference", "format_table",
    "frechet_distance", "get_autoencoder", "get_evaluator", "has_classes", "kept_checkpoints",
    "load_for_evaluation", "mean_pairwise_distance", "measure", "measure_curve", "ndb_test", "plot_curve",
    "read_curve", "real_features", "sample_model", "sample_trainer", "set_figures", "split_indices",
    "train_autoencoder", "train_evaluator",
]  # fmt: skip
