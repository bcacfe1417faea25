"""The ported face-recognition weights of KTL: write, read and drop into HSNet (no torch).

`convert/port_stem.py` turns a facenet-pytorch state dict into orbax checkpoints laid out as

    DIR/stem                  {"params", "batch_stats"} of `Stem`, shaped like HSNet's "stem"
    DIR/inception_resnet_v1   the whole `InceptionResnetV1` (only with `--full`)

Every read is checked against the shapes the Flax modules declare, because orbax restores a
checkpoint whatever the caller expects and a wrong stem would only show up as bad accuracy.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from hsnet_jax.errors import HSNetError
from hsnet_jax.models import InceptionResnetV1, Stem

STEM = "stem"
INCEPTION_RESNET_V1 = "inception_resnet_v1"
COLLECTIONS = ("params", "batch_stats")

Variables = dict[str, Any]


def reference_shapes(module: nn.Module) -> Variables:
    """The `{"params", "batch_stats"}` tree of `module` as ShapeDtypeStructs (no compute)."""
    x = jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32)  # the smallest input the net takes
    shapes = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, train=False), x)
    return {c: shapes[c] for c in COLLECTIONS}


def _flat(tree: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(k.key) for k in path): tuple(np.shape(v)) for path, v in leaves}


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def check_shapes(tree: Mapping[str, Any], reference: Mapping[str, Any], what: str) -> None:
    """Raises HSNetError naming every missing, unexpected or wrongly shaped entry of `tree`."""
    got, want = _flat(tree), _flat(reference)
    problems = []
    if missing := sorted(set(want) - set(got)):
        problems.append(f"missing {len(missing)}: {_listing(missing)}")
    if unexpected := sorted(set(got) - set(want)):
        problems.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
    if wrong := [f"{k} is {got[k]}, expected {want[k]}" for k in sorted(set(got) & set(want))
                 if got[k] != want[k]]:
        problems.append(f"wrong shape {len(wrong)}: {_listing(wrong)}")
    if problems:
        raise HSNetError(f"{what}: " + "; ".join(problems))


def save_pretrained(directory: str, stem: Variables, full: Variables | None = None,
                    overwrite: bool = False) -> list[str]:
    """Writes the stem (and, if given, the whole InceptionResnetV1) under `directory`.

    Returns the checkpoint paths written. Refuses to replace an existing checkpoint unless
    `overwrite`, so a second port never silently changes the weights a run was trained with.
    """
    items = [(STEM, stem, Stem())] + ([(INCEPTION_RESNET_V1, full, InceptionResnetV1())]
                                      if full is not None else [])
    paths = [os.path.join(os.path.abspath(directory), name) for name, _, _ in items]
    if not overwrite and (existing := [p for p in paths if os.path.exists(p)]):
        raise HSNetError(f"{', '.join(existing)} already exists; pass --force to overwrite")
    for name, variables, module in items:
        check_shapes(variables, reference_shapes(module),
                     f"the {name} variables do not match {type(module).__name__}")
    with ocp.StandardCheckpointer() as checkpointer:  # leaving waits for the writes
        for path, (_, variables, _) in zip(paths, items):
            tree = {c: jax.tree.map(lambda a: np.asarray(a, np.float32), variables[c])
                    for c in COLLECTIONS}
            checkpointer.save(path, tree, force=overwrite)
    return paths


def _load(directory: str, name: str, module: nn.Module, how: str) -> Variables:
    path = os.path.join(os.path.abspath(directory), name)
    if not os.path.isdir(path):
        raise HSNetError(f"no ported {name} at {path}; write it with "
                         f"`python convert/port_stem.py --weights FILE --output {directory}{how}`")
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            restored = checkpointer.restore(path)
    except (OSError, ValueError, KeyError) as e:
        raise HSNetError(f"{path} is not a readable orbax checkpoint ({e})") from e
    if not isinstance(restored, Mapping) or set(restored) != set(COLLECTIONS):
        raise HSNetError(f"{path} holds no {{'params', 'batch_stats'}} variables")
    check_shapes(restored, reference_shapes(module),
                 f"the checkpoint at {path} does not match {type(module).__name__}")
    return {c: jax.tree.map(jnp.asarray, restored[c]) for c in COLLECTIONS}


def load_stem_variables(directory: str) -> Variables:
    """The ported stem: `{"params", "batch_stats"}` shaped exactly like HSNet's "stem" entries."""
    return _load(directory, STEM, Stem(), "")


def load_inception_resnet_v1_variables(directory: str) -> Variables:
    """The whole ported face-embedding network, for `InceptionResnetV1().apply` (needs --full)."""
    return _load(directory, INCEPTION_RESNET_V1, InceptionResnetV1(), " --full")


def load_stem_into(variables: Mapping[str, Any], directory: str) -> Variables:
    """KTL's initialisation: `variables` of an HSNet with its "stem" entries replaced by the port.

    Everything else is returned untouched (new dicts, shared leaves). Raises HSNetError when
    `variables` has no stem or its stem's shapes differ from the ported ones.
    """
    stem = load_stem_variables(directory)
    if any(STEM not in variables.get(c, {}) for c in COLLECTIONS):
        raise HSNetError("the variables have no 'stem' entries in both 'params' and 'batch_stats'")
    check_shapes({c: variables[c][STEM] for c in COLLECTIONS}, stem,
                 f"the model's 'stem' entries do not match the ported stem in {directory}")
    out = dict(variables)
    for c in COLLECTIONS:
        out[c] = {**variables[c], STEM: stem[c]}
    return out
