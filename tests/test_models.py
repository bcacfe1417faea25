"""HSNet and Inception-ResNet-v1 against the paper's Table 1 and against PyTorch itself."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from facenet_pytorch import InceptionResnetV1 as TorchInceptionResnetV1

from hsnet_jax.models import FGAL, HSNet, InceptionResnetV1, Stem, upsample_nearest
from hsnet_jax.models.layers import Conv

BATCH = 2


def _shapes(module, size, **kwargs):
    """Variables and outputs of `module` as shapes only (jax.eval_shape: no compute)."""
    x = jax.ShapeDtypeStruct((BATCH, size, size, 3), jnp.float32)
    init = functools.partial(module.init, train=False)
    variables = jax.eval_shape(init, jax.random.key(0), x)
    return variables, jax.eval_shape(
        lambda v, x: module.apply(v, x, train=False, **kwargs), variables, x)


def _random_variables(module, size, seed=0):
    """He-scaled random variables of `module` for inputs of `size`, without jitting `init`
    (compiling HSNet's initialisers costs ~10 s on CPU; the values only need to be sane)."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(rng.normal(0, np.sqrt(2 / np.prod(leaf.shape[:-1])), leaf.shape),
                               jnp.float32)
        if name in ("scale", "var"):
            return jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape), jnp.float32)
        return jnp.asarray(rng.normal(0, 0.1, leaf.shape), jnp.float32)  # bias, mean

    return jax.tree_util.tree_map_with_path(fill, _shapes(module, size)[0])


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _hw(x):
    return tuple(x.shape[1:])


# Table 1 (and docs/design.md section 1): (height = width, channels) of every stage.
STAGES = ("stem", "rdib_a", "sdib_a", "rdib_b", "sdib_b", "rdib_c", "f_a", "f_b", "f_c")
TABLE_1 = {
    224: dict(zip(STAGES, [(25, 256), (25, 256), (12, 896), (12, 896), (5, 1792), (5, 1792),
                           (25, 256), (12, 896), (5, 1792)])),
    160: dict(zip(STAGES, [(17, 256), (17, 256), (8, 896), (8, 896), (3, 1792), (3, 1792),
                           (17, 256), (8, 896), (3, 1792)])),
}
STEM_LAYERS = {  # the stem rows of Table 1; 160 worked out with (n + 2p - k) // s + 1
    224: {"conv2d_1a": (111, 32), "conv2d_2a": (109, 32), "conv2d_2b": (109, 64),
          "conv2d_3b": (54, 80), "conv2d_4a": (52, 192), "conv2d_4b": (25, 256)},
    160: {"conv2d_1a": (79, 32), "conv2d_2a": (77, 32), "conv2d_2b": (77, 64),
          "conv2d_3b": (38, 80), "conv2d_4a": (36, 192), "conv2d_4b": (17, 256)},
}


@pytest.mark.parametrize("size", [224, 160])
def test_table_1_shapes(size):
    _, (logits, feats) = _shapes(HSNet(7), size, return_features=True)
    assert logits.shape == (BATCH, 7) and logits.dtype == jnp.float32
    assert feats["gates"].shape == (BATCH, 3)
    assert set(feats) == set(STAGES) | {"gates"}
    for stage, (hw, c) in TABLE_1[size].items():
        assert _hw(feats[stage]) == (hw, hw, c), stage


@pytest.mark.parametrize("size", [224, 160])
def test_stem_layer_shapes(size):
    stem = Stem()
    x = jax.ShapeDtypeStruct((BATCH, size, size, 3), jnp.float32)
    variables = jax.eval_shape(functools.partial(stem.init, train=False), jax.random.key(0), x)
    _, state = jax.eval_shape(lambda v, x: stem.apply(
        v, x, capture_intermediates=True, mutable=["intermediates"]), variables, x)
    for layer, (hw, c) in STEM_LAYERS[size].items():
        (out,) = state["intermediates"][layer]["__call__"]
        assert _hw(out) == (hw, hw, c), layer


@pytest.mark.parametrize("size", [224, 160])
def test_baseline_shapes(size):
    _, (_, feats) = _shapes(HSNet(7, use_dib=False), size, return_features=True)
    assert {k: _hw(feats[k]) for k in ("repeat_1", "repeat_2", "block8")} == {
        k: (TABLE_1[size][f][0],) * 2 + (TABLE_1[size][f][1],)
        for k, f in (("repeat_1", "f_a"), ("repeat_2", "f_b"), ("block8", "f_c"))}


def test_parameter_counts():
    variables, _ = _shapes(HSNet(7), 75)
    assert _count(variables["params"]) == 13_662_808
    assert _count(variables["params"]["stem"]) == 615_552
    # The literal FGAL (eq. 11-17) has the same parameters; only the statistics of the
    # standardising BatchNorm go.
    literal, _ = _shapes(HSNet(7, fgal_standardize=False), 75)
    assert jax.tree.map(lambda a: a.shape, literal["params"]) == jax.tree.map(lambda a: a.shape, variables["params"])
    assert set(variables["batch_stats"]["fgal"]) == {"norm_a", "norm_b", "norm_c"}
    assert "fgal" not in literal["batch_stats"]


@pytest.fixture(scope="module")
def facenet():
    torch.manual_seed(0)
    return TorchInceptionResnetV1().eval()


def test_baseline_body_matches_facenet_parameter_count(facenet):
    body = ("repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
    torch_params = sum(p.numel() for m in body for p in getattr(facenet, m).parameters())
    torch_stats = sum(b.numel() for m in body for n, b in getattr(facenet, m).named_buffers()
                      if not n.endswith("num_batches_tracked"))
    variables, _ = _shapes(HSNet(7, use_dib=False), 75)
    assert _count(variables["params"]["body"]) == torch_params
    assert _count(variables["batch_stats"]["body"]) == torch_stats


def test_inception_resnet_v1_matches_facenet_counts(facenet):
    variables, _ = _shapes(InceptionResnetV1(), 75)
    assert _count(variables["params"]) == sum(p.numel() for p in facenet.parameters())
    assert _count(variables["params"]) == 23_482_624
    assert _count(variables["batch_stats"]) == sum(
        b.numel() for n, b in facenet.named_buffers() if not n.endswith("num_batches_tracked"))


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (3, 2, 1, 2),   # SDIB-A's d=2 branch (Table 1: stride 2, padding d-1, dilation d)
    (3, 2, 2, 3),   # SDIB-B's d=3 branch
    (3, 1, 3, 3),   # RDIB-B's d=3 branch
    (3, 1, 2, 2),
    (3, 2, 0, 1),
    (1, 1, 0, 1),
    ((1, 7), 1, (0, 3), 1),  # Block17's factorised kernels
    ((3, 1), 1, (1, 0), (2, 1)),
])
def test_conv_matches_torch_conv2d(kernel, stride, padding, dilation):
    rng = np.random.default_rng(0)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.normal(size=(2, 13, 11, 5)).astype(np.float32)
    w = rng.normal(size=(6, 5, kh, kw)).astype(np.float32)  # torch OIHW
    b = rng.normal(size=(6,)).astype(np.float32)
    conv = Conv(6, kernel, stride, padding, dilation, use_bias=True)
    got = conv.apply({"params": {"kernel": w.transpose(2, 3, 1, 0), "bias": b}}, x)
    want = F.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(w),
                    torch.from_numpy(b), stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(np.asarray(got), want.numpy().transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("src, dst", [((5, 5), (12, 12)), ((12, 12), (25, 25)), ((3, 7), (7, 3)),
                                      ((4, 6), (8, 12)), ((6, 5), (13, 17)), ((7, 7), (7, 7)),
                                      ((25, 12), (12, 5))])
def test_upsample_nearest_matches_torch_interpolate(src, dst):
    x = np.random.default_rng(0).normal(size=(2, *src, 3)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=dst, mode="nearest")
    np.testing.assert_array_equal(np.asarray(upsample_nearest(x, dst)),
                                  want.numpy().transpose(0, 2, 3, 1))


@pytest.mark.parametrize("train, standardize", [(False, True), (True, True), (True, False)])
def test_fgal_is_gated_sum_of_level_classifiers(train, standardize):
    rng = np.random.default_rng(0)
    f_a, f_b, f_c = (rng.normal(size=s).astype(np.float32)
                     for s in [(4, 12, 12, 8), (4, 5, 5, 16), (4, 2, 2, 32)])
    fgal = FGAL(num_classes=4, standardize=standardize)
    variables = fgal.init(jax.random.key(0), f_a, f_b, f_c)
    params = jax.tree.map(lambda p: p + rng.normal(0, 0.1, p.shape).astype(np.float32), variables["params"])
    stats = {name: {"mean": rng.normal(0, 0.5, s["mean"].shape).astype(np.float32),
                    "var": rng.uniform(0.5, 2.0, s["var"].shape).astype(np.float32)}
             for name, s in variables.get("batch_stats", {}).items()}
    (logits, gates), _ = fgal.apply({"params": params, "batch_stats": stats}, f_a, f_b, f_c,
                                    train=train, mutable=["batch_stats"])

    def lateral(name, x):  # 1x1 convolution with bias
        return x @ np.asarray(params[name]["kernel"])[0, 0] + np.asarray(params[name]["bias"])

    def up(x, like):  # PyTorch's nearest upsampling
        t = F.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=like.shape[1:3])
        return t.numpy().transpose(0, 2, 3, 1)

    t_c = lateral("lat_c", f_c)
    t_b = f_b + up(lateral("lat_b", t_c), f_b)
    t_a = f_a + up(lateral("lat_a", t_b), f_a)
    want_logits, want_gates = 0, []
    for level, t in (("a", t_a), ("b", t_b), ("c", t_c)):
        psi = t.mean(axis=(1, 2))
        if standardize:  # without scale or bias: batch statistics in training, running ones after
            norm = stats[f"norm_{level}"]
            mean, var = (psi.mean(0), psi.var(0)) if train else (norm["mean"], norm["var"])
            psi = (psi - mean) / np.sqrt(var + 1e-3)
        dense = lambda name: psi @ np.asarray(params[name]["kernel"]) + np.asarray(  # noqa: E731
            params[name]["bias"])
        gate = 1 / (1 + np.exp(-dense(f"gate_{level}")))
        want_logits = want_logits + gate * dense(f"classifier_{level}")
        want_gates.append(gate)
    np.testing.assert_allclose(np.asarray(gates), np.concatenate(want_gates, -1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(logits), want_logits, rtol=1e-4, atol=1e-5)


def test_fgal_starts_with_open_gates_and_zero_logits():
    f_a, f_b, f_c = (jnp.ones(s) for s in [(2, 12, 12, 8), (2, 5, 5, 16), (2, 2, 2, 32)])
    variables = FGAL(num_classes=4).init(jax.random.key(0), f_a, f_b, f_c)
    logits, gates = FGAL(num_classes=4).apply(variables, f_a, f_b, f_c)
    np.testing.assert_array_equal(np.asarray(gates), 0.5)
    np.testing.assert_array_equal(np.asarray(logits), 0.0)
    assert not any(name.startswith("norm_") for name in variables["params"])  # no parameters


def test_literal_fgal_starts_from_he_initialised_gates():
    f_a, f_b, f_c = (jnp.ones(s) for s in [(2, 12, 12, 256), (2, 5, 5, 512), (2, 2, 2, 1024)])
    params = FGAL(num_classes=4, standardize=False).init(jax.random.key(0), f_a, f_b, f_c)["params"]
    for level, fan_in in (("a", 256), ("b", 512), ("c", 1024)):
        for layer in ("gate", "classifier"):
            kernel = np.asarray(params[f"{layer}_{level}"]["kernel"])
            # He (fan-in) normal, eq. 18: standard deviation sqrt(2 / fan_in).
            assert 0.85 < kernel.std() * np.sqrt(fan_in / 2) < 1.15, (layer, level)


def _forward(model, variables, x, **kwargs):
    return jax.jit(functools.partial(model.apply, train=False, **kwargs))(variables, x)


SIZE = 75  # the smallest input HSNet takes: fast on CPU


def _images(seed=0, size=SIZE):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (BATCH, size, size, 3)),
                       jnp.float32)


def test_hsnet_logits_are_fgal_of_its_features():
    model, x = HSNet(7), _images()
    variables = _random_variables(model, SIZE)
    logits, feats = _forward(model, variables, x, return_features=True)
    want, gates = FGAL(7).apply({"params": variables["params"]["fgal"],
                                 "batch_stats": variables["batch_stats"]["fgal"]},
                                feats["f_a"], feats["f_b"], feats["f_c"])
    np.testing.assert_allclose(np.asarray(logits), np.asarray(want), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(feats["gates"]), np.asarray(gates), rtol=1e-5, atol=1e-7)


def test_without_fgal_a_linear_classifier_on_pooled_f_c():
    model, x = HSNet(7, use_fgal=False), _images()
    variables = _random_variables(model, SIZE)
    assert "fgal" not in variables["params"]
    logits, feats = _forward(model, variables, x, return_features=True)
    assert "gates" not in feats
    dense = variables["params"]["classifier"]
    want = np.asarray(feats["f_c"]).mean(axis=(1, 2)) @ dense["kernel"] + dense["bias"]
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-4, atol=1e-4)


def test_without_dib_the_body_is_inception_resnet_v1():
    variables, (_, feats) = _shapes(HSNet(7, use_dib=False), SIZE, return_features=True)
    assert set(variables["params"]["body"]) == (
        {f"repeat_1_{i}" for i in range(5)} | {f"repeat_2_{i}" for i in range(10)}
        | {f"repeat_3_{i}" for i in range(5)} | {"mixed_6a", "mixed_7a", "block8"})
    assert not any(k.startswith(("rdib", "sdib")) for k in feats)


def test_bfloat16_forward_is_close_to_float32():
    x = _images()
    variables = _random_variables(HSNet(7), SIZE)
    want = np.asarray(_forward(HSNet(7), variables, x))
    got, feats = _forward(HSNet(7, dtype=jnp.bfloat16), variables, x, return_features=True)
    assert feats["stem"].dtype == jnp.bfloat16 and got.dtype == jnp.float32
    # bfloat16 keeps 8 significant bits (relative rounding 2^-9 ~ 0.2%); ~25 layers on the
    # deepest path compound it to a few percent, so 5% of the logits' scale is the bound.
    np.testing.assert_allclose(np.asarray(got), want, atol=0.05 * np.abs(want).max())
    _, state = jax.jit(lambda v, x: HSNet(7, dtype=jnp.bfloat16).apply(
        v, x, train=True, mutable=["batch_stats"]))(variables, x)
    assert {x.dtype for x in jax.tree.leaves(state["batch_stats"])} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}


@pytest.mark.slow  # compiles HSNet's backward pass
@pytest.mark.parametrize("freeze_stem", [True, False])
def test_freeze_stem(freeze_stem):
    model, x = HSNet(7, freeze_stem=freeze_stem), _images()
    variables = _random_variables(model, SIZE)

    def loss(params):
        (logits, feats), state = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True,
            return_features=True, mutable=["batch_stats"])
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0]), (feats["stem"], state)

    grads, (stem, state) = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
    stem_grad = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["stem"]))
    body_grad = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["body"]))
    stats_moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                               state["batch_stats"], variables["batch_stats"])
    assert body_grad > 0 and all(jax.tree.leaves(stats_moved["body"]))
    if freeze_stem:  # KTL: no gradient into the stem, its BatchNorm in inference mode
        assert stem_grad == 0
        assert not any(jax.tree.leaves(stats_moved["stem"]))
        inference = Stem().apply({c: variables[c]["stem"] for c in variables}, x, train=False)
        np.testing.assert_allclose(np.asarray(stem), np.asarray(inference), rtol=1e-5, atol=1e-5)
    else:
        assert stem_grad > 0
        assert all(jax.tree.leaves(stats_moved["stem"]))
