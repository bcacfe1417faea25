"""A trained run's report on any split, also of another database (what
`python -m hsnet_jax.evaluate` runs).

Writes WORKDIR/eval/<name>_metrics.json (the `hsnet_jax.inference.metrics` report plus what was
evaluated), WORKDIR/eval/<name>_confusion_matrix.png (Fig. 6), <name>_examples.png (Fig. 5:
the first 4 faces of each true class, titled with the recognised expression and its
probability, green right, red wrong) and, for a model with FGAL, <name>_gates.png (the mean
of FGAL's three gates per true class, also in the JSON as `gates`), where <name> is the split
("test"), prefixed by the dataset when it is not the run's own ("kdef_test") and suffixed
"_latest" for the latest rather than the best checkpoint ("test_latest").

Across databases both label spaces go through the canonical 7 expressions
(`hsnet_jax.data.canonical_mapping`): a sample whose true class has no canonical counterpart
(RaFD's contempt) cannot be scored and is left out, counted in `excluded`; a prediction of a
model class without a counterpart (a RaFD model saying contempt) is wrong, and such classes
appear as extra columns of the confusion matrix.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from hsnet_jax import data
from hsnet_jax.errors import HSNetError
from hsnet_jax.inference import metrics
from hsnet_jax.runtime import checkpoint
from hsnet_jax.models import architecture, create_model
from hsnet_jax.runtime.devices import make_mesh
from hsnet_jax.inference.forward import make_predict_fn

EXAMPLES_PER_CLASS = 4  # faces per true class in Fig. 5 (<name>_examples.png)


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run, ready to predict: `predict(images_uint8) -> logits` [N, classes];
    with FGAL also `predict_with_gates(images_uint8) -> (logits, gates [N, 3])`, else None."""

    class_names: tuple[str, ...]
    predict: Callable[[np.ndarray], np.ndarray]
    predict_with_gates: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None


def load_run(workdir: str, which: str = "best", model: nn.Module | None = None,
             batch_size: int | None = None, small_batches: bool = False) -> Run:
    """The run's class names and checkpoint `which`, behind the trainer's one
    evaluation forward path (`make_predict_fn`: resize + normalise + model, sharded), in
    batches of `batch_size` (default the run's eval_batch_size; every call is padded to it, or
    with `small_batches` to the next power of two: `make_predict_fn`).
    `model`: the network the run was trained with when it was handed to the loop rather than
    described by the config."""
    config = checkpoint.load_run_config(workdir)
    class_names = tuple(checkpoint.read_meta(workdir, which)["class_names"])
    model = model if model is not None else create_model(config, len(class_names))
    variables = checkpoint.restore_variables(workdir, which, expected=architecture(model))
    check_shapes(variables, model, config.image_size, checkpoint.checkpoint_dir(workdir, which))
    mesh = make_mesh()
    batch_size = batch_size or config.eval_batch_size
    forward = make_predict_fn(model, config.image_size, mesh, batch_size, small_batches=small_batches)
    with_gates = None
    if model.use_fgal:
        gated = make_predict_fn(model, config.image_size, mesh, batch_size, with_gates=True,
                                small_batches=small_batches)
        with_gates = lambda images: gated(variables, images)  # noqa: E731
    return Run(class_names, lambda images: forward(variables, images), with_gates)


def check_shapes(variables: dict[str, Any], model: nn.Module, image_size: int, where: str) -> None:
    """One line when the stored arrays do not fit the network its metadata describes (metadata
    edited to another class count): found here, not as a traceback inside the forward pass."""
    wanted = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, image_size, image_size, 3)),
                                               train=False))
    want = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(
        {c: wanted[c] for c in variables if c in wanted})}
    have = {jax.tree_util.keystr(k): np.shape(v) for k, v in jax.tree_util.tree_leaves_with_path(variables)}
    for key in sorted(set(want) | set(have)):
        if want.get(key) != have.get(key):
            raise HSNetError(f"{where}: the stored variables do not fit the network its metadata describes "
                             f"({key}: {have.get(key, 'missing')} stored, {want.get(key, 'none')} expected)")


def common_columns(dataset_classes: Sequence[str], model_classes: Sequence[str]
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The one label space of a dataset and a model: `(label_columns, model_columns,
    class_names)`, each dataset / model class's column in it (-1: a dataset class without a
    canonical counterpart, which cannot be scored).

    Same classes: the model's own. Otherwise the canonical 7 expressions followed by the
    model's classes that have no canonical counterpart.
    """
    if tuple(dataset_classes) == tuple(model_classes):
        identity = np.arange(len(model_classes))
        return identity, identity, list(model_classes)
    canonical = list(data.CANONICAL_EXPRESSIONS)
    model_map = data.canonical_mapping(model_classes)
    extra = [name for name, c in zip(model_classes, model_map) if c < 0]
    model_map = np.where(model_map >= 0, model_map, len(canonical) + np.cumsum(model_map < 0) - 1)
    return data.canonical_mapping(dataset_classes), model_map, canonical + extra


def to_common_space(labels: np.ndarray, dataset_classes: Sequence[str], predictions: np.ndarray,
                    model_classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Puts true labels and predictions in one label space (`common_columns`).

    Returns `(labels, predictions, class_names, excluded)`; samples whose true class has no
    column are dropped and counted in `excluded`.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    label_map, model_map, class_names = common_columns(dataset_classes, model_classes)
    keep = label_map[labels] >= 0
    if not keep.any():
        raise HSNetError(f"no sample has a class among the canonical expressions "
                         f"({', '.join(data.CANONICAL_EXPRESSIONS)}); "
                         f"the dataset's classes: {', '.join(dataset_classes)}")
    return label_map[labels[keep]], model_map[predictions[keep]], class_names, int(np.sum(~keep))


def report_name(split: str, dataset: str | None, run_dataset: str, which: str) -> str:
    """The file stem under eval/: "test", "kdef_test", "test_latest", ... (never overwritten by
    another dataset's or checkpoint's report)."""
    name = split
    if dataset and dataset != run_dataset:
        name = f"{dataset.replace('/', '_')}_{name}"
    return f"{name}_latest" if which == "latest" else name


def evaluate_workdir(workdir: str, split: str = "test", dataset: str | None = None,
                     which: str = "best", data_dir: str | None = None,
                     model: nn.Module | None = None, examples: data.Split | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluates checkpoint `which` of the run in `workdir` on `split` of `dataset` (default:
    the run's own) and writes the JSON report and the figures under eval/. `examples`: the
    split to score instead of reading it (a fold's test subjects); `extra`: keys added to the
    report (the loop's "best_epoch_on_test").

    Returns the report: `hsnet_jax.inference.metrics.classification_report`'s keys plus `dataset`,
    `split`, `checkpoint`, `excluded`, `examples` (the faces of Fig. 5), with FGAL `gates`
    (`metrics.gates_per_class`), and `metrics_path` / `plot_path` / `examples_path` / `gates_path`.
    """
    config = checkpoint.load_run_config(workdir)
    name = dataset or config.dataset
    data_dir = data_dir or config.data_dir or None
    examples = examples if examples is not None else data.load_split(name, split, data_dir)
    run = load_run(workdir, which, model)
    gates = None
    if run.predict_with_gates:
        logits, gates = run.predict_with_gates(examples.images)
    else:
        logits = run.predict(examples.images)
    metrics.check_finite(np.asarray(logits), f"checkpoint {which} of {workdir}")
    predictions = np.argmax(logits, axis=-1)
    labels, predictions, class_names, excluded = to_common_space(
        examples.labels, examples.class_names, predictions, run.class_names)
    report = metrics.classification_report(labels, predictions, class_names)
    stem = os.path.join(os.path.abspath(workdir), "eval",
                        report_name(split, name, config.dataset, which))
    report.update(dataset=name, split=split, checkpoint=which, excluded=excluded, fingerprint=examples.fingerprint,
                  metrics_path=f"{stem}_metrics.json", plot_path=f"{stem}_confusion_matrix.png",
                  examples_path=f"{stem}_examples.png", **(extra or {}))
    if gates is not None:  # per true class of the dataset evaluated on
        report.update(gates=metrics.gates_per_class(gates, examples.labels, examples.class_names),
                      gates_path=f"{stem}_gates.png")
    report["examples"] = fig5_examples(examples, logits, run.class_names, class_names)
    if jax.process_index() == 0:  # several hosts compute the same report; one writes it
        _write(report, examples.images)
    return report


def fig5_examples(examples: data.Split, logits: np.ndarray, model_classes: Sequence[str],
                  class_names: Sequence[str], per_class: int = EXAMPLES_PER_CLASS) -> list[dict[str, Any]]:
    """The faces of Fig. 5, in the report's label space `class_names`: per true class the first
    `per_class` scored samples of the split, with the model's top expression and probability."""
    from hsnet_jax.inference.figures import example_indices

    label_map, model_map, _ = common_columns(examples.class_names, model_classes)
    probabilities = metrics.softmax(logits)
    cells = []
    for c, rows in enumerate(example_indices(label_map[examples.labels], len(class_names), per_class)):
        for i in rows:
            k = int(np.argmax(probabilities[i]))
            cells.append(dict(index=i, true=class_names[c], predicted=class_names[model_map[k]],
                              probability=float(probabilities[i, k]), right=bool(model_map[k] == c)))
    return cells


def _write(report: dict[str, Any], images: np.ndarray) -> None:
    """The report's JSON and figures: Fig. 6, Fig. 5 (examples) and, with FGAL, the gates."""
    from hsnet_jax.inference import figures

    os.makedirs(os.path.dirname(report["metrics_path"]), exist_ok=True)
    with open(report["metrics_path"], "w") as f:
        json.dump(report, f, indent=2)
    where = f"{report['dataset']} {report['split']}"
    metrics.plot_confusion_matrix(
        report, report["plot_path"],
        title=f"{where}: Acc. {100 * report['accuracy']:.2f}%, mAcc. {100 * report['mean_accuracy']:.2f}%")
    figures.plot_examples(images, report["examples"], report["examples_path"], EXAMPLES_PER_CLASS,
                          title=f"{where}: recognised expression (rows: true expression)")
    if "gates" in report:
        figures.plot_gates(report["gates"], report["gates_path"], title=f"{where}: FGAL gates per true expression")


def format_report(report: dict[str, Any]) -> str:
    """Acc., mAcc. and per-class accuracy as a small table (what the CLI prints)."""
    lines = [f"{report['dataset']} {report['split']} ({report['checkpoint']} checkpoint): "
             f"{report['num_examples']} images"
             + (f", {report['excluded']} without a canonical class left out" if report["excluded"] else "")]
    width = max(len(n) for n in report["class_names"] + ["mean accuracy"])
    lines.append(f"{'accuracy':<{width}}  {100 * report['accuracy']:6.2f}%")
    lines.append(f"{'mean accuracy':<{width}}  {100 * report['mean_accuracy']:6.2f}%")
    for name, accuracy in report["per_class"].items():
        lines.append(f"  {name:<{width - 2}}  " + ("     -" if accuracy is None else f"{100 * accuracy:6.2f}%"))
    lines.append(f"wrote {report['metrics_path']}")
    for key in ("plot_path", "examples_path", "gates_path"):
        if key in report:
            lines.append(f"wrote {report[key]}")
    return "\n".join(lines)
