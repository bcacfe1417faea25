"""A run directory written without training, for the evaluate / predict tests: the trainer's
own config.json and orbax "best" checkpoint, holding an HSNet whose answer is known.

The network has no FGAL head (`use_fgal=False`: one Dense on pooled F^C); its kernel is zero
and its bias is `LOGIT` on one class, so every image gets the logits `LOGIT * onehot(answer)`
whatever the rest of the (randomly initialised) network computes. With `fgal=True` the head is
FGAL with zero kernels: gate j is sigmoid(GATE_BIASES[j]) for every image (`GATES`) and level
A's classifier bias is `LOGIT * onehot(answer) / GATES[0]`, the others' zero: the same logits.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from hsnet_jax.runtime import checkpoint
from hsnet_jax.config import base_config
from hsnet_jax.models import create_model

IMAGE_SIZE = 75  # HSNet's smallest input: the cheapest compile
LOGIT = 4.0
GATE_BIASES = np.array([0.0, 1.0, -2.0], np.float32)  # levels A, B, C
GATES = 1.0 / (1.0 + np.exp(-GATE_BIASES))


def answer_probabilities(num_classes: int, answer: int) -> np.ndarray:
    """softmax(LOGIT * onehot(answer)), what the handmade network says for every image."""
    p = np.ones(num_classes)
    p[answer] = np.exp(LOGIT)
    return p / p.sum()


def random_variables(model, seed: int = 0) -> dict:
    """Random weights of the right shapes without compiling `model.init` (which costs ~20 s on
    2 shared cores): N(0, 0.05) parameters, BatchNorm statistics mean 0 and variance 1."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3)),
                                               train=False))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name in ("mean", "var"):
            return np.full(leaf.shape, float(name == "var"), np.float32)
        return rng.normal(0.0, 0.05, leaf.shape).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, dict(shapes))


def answering_variables(model, answer: int, fgal: bool, logit: float = LOGIT) -> dict:
    """Random weights whose head gives every image the logits `logit * onehot(answer)` (with
    `logit` inf: a damaged network, whose probabilities are NaN)."""
    variables = random_variables(model)
    logits = np.zeros(model.num_classes, np.float32)
    logits[answer] = logit
    params = variables["params"]
    if fgal:
        for j, level in enumerate("abc"):
            for layer, bias in ((f"gate_{level}", GATE_BIASES[j:j + 1]),
                                (f"classifier_{level}", logits / GATES[0] if j == 0 else 0 * logits)):
                params["fgal"][layer] = {"kernel": np.zeros_like(params["fgal"][layer]["kernel"]),
                                         "bias": bias.astype(np.float32)}
    else:
        params["classifier"] = {"kernel": np.zeros_like(params["classifier"]["kernel"]), "bias": logits}
    return variables


def make_run(workdir: str, *, dataset: str, data_dir: str, class_names: list[str], answer: str,
             fgal: bool = False, image_size: int = IMAGE_SIZE, variables: dict | None = None,
             logit: float = LOGIT) -> None:
    """Writes WORKDIR/config.json and WORKDIR/checkpoints/best for a network answering `answer`,
    or, given `variables` (HSNet's {"params", "batch_stats"}, no FGAL), for that network."""
    os.makedirs(workdir, exist_ok=True)
    config = base_config(dataset)
    config.data_dir = data_dir
    config.image_size = image_size
    config.eval_batch_size = 64
    config.model.use_fgal = fgal
    model = create_model(config, len(class_names))
    if variables is None:
        variables = answering_variables(model, class_names.index(answer), fgal, logit)
    checkpoint.save_run_config(workdir, config)
    manager = checkpoint.open_manager(workdir, "best")
    checkpoint.save(manager, 1, variables, dict(epoch=1, class_names=class_names, dataset=dataset,
                                                num_classes=len(class_names), use_dib=True, use_fgal=fgal,
                                                fgal_standardize=True))
    manager.wait_until_finished()
