"""A run exported to PyTorch (convert/export_torch.py -> convert.torch_hsnet.load_exported)
computes the JAX model's logits, for every architecture switch, in float32 and float64; and
the CLI's errors are one line. At 75 px (HSNet's smallest input) to stay fast."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from convert import export_torch
from convert.torch_hsnet import load_exported, sidecar_path
from hsnet_jax.runtime import checkpoint
from hsnet_jax.config import base_config
from hsnet_jax.models import HSNet, normalize
from hsnet_jax.models import create_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 75
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
# (use_dib, use_fgal, fgal_standardize); without FGAL the last switch changes nothing.
# The default network runs in the fast subset, the other five as slow tests (each one
# compiles nothing but runs two ~90-layer networks eagerly in two precisions).
ARCHITECTURES = [(True, True, True)] + [pytest.param(*a, marks=pytest.mark.slow) for a in (
    (True, True, False), (True, False, True), (False, True, True), (False, True, False), (False, False, True))]


def random_variables(model: HSNet, seed: int) -> dict:
    """Random weights and BatchNorm statistics of `model`'s shapes (every tensor exercised),
    without compiling `init`."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3))))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "var":
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        if name in ("mean", "bias"):
            return rng.normal(0.0, 0.1, leaf.shape).astype(np.float32)
        if name == "scale":
            return rng.uniform(0.8, 1.2, leaf.shape).astype(np.float32)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return (rng.normal(0.0, 1.0, leaf.shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, dict(shapes))


def make_run(workdir: str, use_dib: bool, use_fgal: bool, fgal_standardize: bool, seed: int = 0) -> dict:
    """A run directory (config.json + orbax best checkpoint) holding random weights."""
    config = base_config("synthetic")
    config.image_size = SIZE
    config.model.update(use_dib=use_dib, use_fgal=use_fgal, fgal_standardize=fgal_standardize)
    variables = random_variables(create_model(config, len(CLASSES)), seed)
    os.makedirs(workdir)
    checkpoint.save_run_config(workdir, config)
    manager = checkpoint.open_manager(workdir, "best")
    checkpoint.save(manager, 3, variables, dict(epoch=2, class_names=CLASSES, num_classes=len(CLASSES),
                                                use_dib=use_dib, use_fgal=use_fgal,
                                                fgal_standardize=fgal_standardize))
    manager.wait_until_finished()
    return variables


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.mark.parametrize("use_dib, use_fgal, fgal_standardize", ARCHITECTURES)
def test_exported_logits_equal_jax(tmp_path, use_dib, use_fgal, fgal_standardize):
    workdir, output = str(tmp_path / "run"), str(tmp_path / "out" / "hsnet.pt")
    variables = make_run(workdir, use_dib, use_fgal, fgal_standardize)
    info = export_torch.export(workdir, output)
    assert info["architecture"] == dict(use_dib=use_dib, use_fgal=use_fgal, fgal_standardize=fgal_standardize)

    # A plain state dict: tensors only, loadable without unpickling code.
    state = torch.load(output, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = load_exported(output)
    assert not model.training and model.class_names == CLASSES and model.preprocessing["image_size"] == SIZE

    pixels = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.float32)
    x = np.array(normalize(pixels))  # writable, for torch.from_numpy
    jax_model = HSNet(len(CLASSES), use_dib=use_dib, use_fgal=use_fgal, fgal_standardize=fgal_standardize)
    expected = np.asarray(jax_model.apply(variables, x, train=False))
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert got.shape == (2, 7) and _rel(got, expected) < 1e-4

    with jax.enable_x64(True):
        x64 = np.asarray(x, np.float64)
        v64 = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
        expected64, feats = jax_model.clone(dtype=jnp.float64).apply(v64, x64, train=False, return_features=True)
    with torch.no_grad():
        got64, gates = model.double()(torch.from_numpy(x64).permute(0, 3, 1, 2), return_gates=True)
    assert _rel(got64.numpy(), expected64) < 1e-10
    if use_fgal:
        assert _rel(gates.numpy(), feats["gates"]) < 1e-10
    else:
        assert gates is None


def test_sidecar_names_the_preprocessing(tmp_path):
    workdir, output = str(tmp_path / "run"), str(tmp_path / "hsnet.pt")
    make_run(workdir, True, True, False)
    result = subprocess.run([sys.executable, "convert/export_torch.py", "--workdir", workdir, "--output", output],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fgal_standardize=False" in result.stdout and "input 75 px" in result.stdout
    with open(sidecar_path(output)) as f:
        info = json.load(f)
    assert info["class_names"] == CLASSES and info["source"]["checkpoint"] == "best"
    assert "(pixels - 127.5) / 128" in info["preprocessing"]["normalize"]


@pytest.mark.parametrize("args, message", [
    (["--which", "latest"], "no latest checkpoint"),
    (["--workdir", "/nonexistent"], "is not a training run directory"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    workdir = str(tmp_path / "run")
    os.makedirs(workdir)
    checkpoint.save_run_config(workdir, base_config("synthetic"))
    command = [sys.executable, "convert/export_torch.py", "--workdir", workdir, "--output", str(tmp_path / "x.pt")]
    result = subprocess.run(command + args, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1
