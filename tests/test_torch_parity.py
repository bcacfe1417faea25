"""The whole HSNet against an independent PyTorch implementation (convert/torch_hsnet.py)
with the same random weights and BatchNorm statistics: features, logits, gates and gradients
at the paper's 224x224 input, where FGAL upsamples 5->12 and 12->25; and five training steps
(Adam, BatchNorm in training mode) on the same batches, at 75 px.

Both sides compute in float64, so the comparison is of the functions, not of float32
rounding (which over 60 layers and training-mode BatchNorm reaches ~1e-4 relative)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from convert import torch_hsnet
from hsnet_jax.training import train_step
from hsnet_jax.models import HSNet

SIZE = 224


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    reference = torch_hsnet.randomize_(torch_hsnet.HSNet(7), seed=1).double()
    variables = torch_hsnet.to_flax(reference)  # float64 numpy
    pixels = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)).astype(np.float32)
    x = (pixels.astype(np.float64) - 127.5) / 128.0  # normalize(), in float64
    return reference, variables, x


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


def test_inference_matches_pytorch(pair):
    reference, variables, x = pair
    model = HSNet(7, dtype=jnp.float64)
    logits, feats = jax.jit(lambda v, x: model.apply(v, x, train=False, return_features=True))(variables, x)
    reference.eval()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).double()
    with torch.no_grad():
        stem = reference.stem(xt)
        f_a, f_b, f_c = reference.body(stem)
        expected, gates = reference.fgal(f_a, f_b, f_c)
    for name, t in (("stem", stem), ("f_a", f_a), ("f_b", f_b), ("f_c", f_c)):
        assert _rel(feats[name], t.permute(0, 2, 3, 1).numpy()) < 1e-10, name
    assert _rel(logits, expected.numpy()) < 1e-10
    assert _rel(feats["gates"], gates.numpy()) < 1e-10 and feats["gates"].shape == (4, 3)
    assert np.all((feats["gates"] > 0) & (feats["gates"] < 1))


def test_training_gradients_match_pytorch(pair):
    reference, variables, x = pair
    labels = np.array([3, 5, 0, 6])
    model = HSNet(7, dtype=jnp.float64)

    def loss_fn(params):
        logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(variables["params"])
    reference.train()
    reference.zero_grad()
    expected = F.cross_entropy(reference(torch.from_numpy(x).permute(0, 3, 1, 2).double()),
                               torch.from_numpy(labels))
    expected.backward()
    assert float(loss) == pytest.approx(expected.item(), rel=1e-10)
    checks = {
        "fgal.classifier_a.weight": grads["fgal"]["classifier_a"]["kernel"].T,
        "fgal.lat_c.weight": grads["fgal"]["lat_c"]["kernel"][0, 0].T[:, :, None, None],
        "body.rdib_b.branch2_dilated.conv.weight":
            grads["body"]["rdib_b"]["branch2_dilated"]["conv"]["kernel"].transpose(3, 2, 0, 1),
        "body.sdib_b.branch1_dilated.bn.weight": grads["body"]["sdib_b"]["branch1_dilated"]["bn"]["scale"],
        "stem.conv2d_1a.conv.weight": grads["stem"]["conv2d_1a"]["conv"]["kernel"].transpose(3, 2, 0, 1),
    }
    named = dict(reference.named_parameters())
    for name, g in checks.items():
        assert _rel(g, named[name].grad.numpy()) < 1e-8, name


def test_one_training_step_keeps_pytorchs_running_statistics():
    """Every BatchNorm (convolutions: n = batch x H x W; FGAL's standardisation of pooled
    features: n = batch) stores PyTorch's running mean and UNBIASED running variance."""
    torch.manual_seed(0)
    reference = torch_hsnet.randomize_(torch_hsnet.HSNet(7), seed=2).double()
    # Copies (to_flax copies too): torch's forward updates its statistics in place.
    variables = jax.tree.map(np.copy, torch_hsnet.to_flax(reference))
    pixels = np.random.default_rng(3).integers(0, 256, (4, 75, 75, 3))
    x = (pixels.astype(np.float64) - 127.5) / 128.0
    _, updates = jax.jit(lambda v, x: HSNet(7, dtype=jnp.float64).apply(
        v, x, train=True, mutable=["batch_stats"]))(variables, x)
    reference.train()
    with torch.no_grad():
        reference(torch.from_numpy(x).permute(0, 3, 1, 2))
    expected = torch_hsnet.to_flax(reference)["batch_stats"]
    paths = jax.tree_util.tree_leaves_with_path(expected)
    ours = dict(jax.tree_util.tree_leaves_with_path(updates["batch_stats"]))
    assert len(paths) == len(ours) == 72  # mean and var of 36 BatchNorms (33 in convolutions, 3 in FGAL)
    for path, value in paths:
        assert _rel(ours[path], value) < 1e-10, jax.tree_util.keystr(path)
    # The FGAL variances differ from Flax's biased ones by n/(n-1) = 4/3: a test that can fail.
    assert _rel(updates["batch_stats"]["fgal"]["norm_a"]["var"], expected["fgal"]["norm_a"]["var"]) < 1e-10
@pytest.mark.slow
def test_five_adam_steps_match_pytorch():
    """Training as PyTorch does it: the same initial weights, the same (already augmented)
    batches, five Adam steps at lr 1e-3 with BatchNorm in training mode, float64 on both sides.
    The augmentation's random numbers are not part of this (JAX's and torch's differ)."""
    torch.manual_seed(0)
    reference = torch_hsnet.randomize_(torch_hsnet.HSNet(7), seed=2).double().train()
    variables = jax.tree.map(np.asarray, torch_hsnet.to_flax(reference))
    rng = np.random.default_rng(3)
    batches = [((rng.integers(0, 256, (4, 75, 75, 3)) - 127.5) / 128.0, rng.integers(0, 7, 4)) for _ in range(5)]

    opt = torch.optim.Adam(reference.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(reference(torch.from_numpy(x).permute(0, 3, 1, 2)), torch.from_numpy(y)).backward()
        opt.step()

    model = HSNet(7, dtype=jnp.float64)
    tx = train_step.make_optimizer(variables["params"], learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8,
                                   freeze_stem=False)

    @jax.jit
    def step(params, batch_stats, opt_state, x, y):
        def loss_fn(params):
            logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                          mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates["batch_stats"]

        grads, batch_stats = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state

    params, batch_stats, opt_state = variables["params"], variables["batch_stats"], tx.init(variables["params"])
    for x, y in batches:
        params, batch_stats, opt_state = step(params, batch_stats, opt_state, x, y)

    trained = torch_hsnet.to_flax(reference)
    worst = {}
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(trained["params"])):
        worst[jax.tree_util.keystr(path)] = _rel(got, want)
    assert max(worst.values()) < 1e-8, max(worst, key=worst.get)
    # Running means and (unbiased, as PyTorch keeps them) running variances of every BatchNorm.
    stats = zip(jax.tree_util.tree_leaves_with_path(batch_stats), jax.tree.leaves(trained["batch_stats"]))
    for (path, got), want in stats:
        assert _rel(got, want) < 1e-8, jax.tree_util.keystr(path)
