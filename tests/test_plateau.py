"""hsnet_jax.training.plateau against torch.optim.lr_scheduler.ReduceLROnPlateau: the same rate after
every epoch on many loss sequences and settings, an exact resume through an orbax checkpoint,
and one-line errors for settings PyTorch refuses."""

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
import torch

from hsnet_jax.training import plateau
from hsnet_jax.config import base_config, check_plateau
from hsnet_jax.errors import HSNetError

BASE_LR = 0.01


def _settings(**overrides) -> ml_collections.ConfigDict:
    settings = base_config("x").plateau
    settings.update(overrides)
    return settings


def _torch_rates(losses, settings) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", **settings.to_dict())
    rates = []
    for loss in losses:
        sched.step(float(np.float32(loss)))  # a PyTorch loss is a float32 tensor
        rates.append(opt.param_groups[0]["lr"])
    return rates


def _our_rates(losses, settings, state=None) -> tuple[list[float], plateau.PlateauState]:
    state = plateau.init_state() if state is None else state
    rates = []
    for loss in losses:
        state = plateau.step(state, loss, BASE_LR, settings)
        rate = plateau.rate(BASE_LR, int(state.reductions), settings)
        assert float(state.scale) == np.float32(rate / BASE_LR)
        rates.append(rate)
    return rates, state


def _sequences():
    rng = np.random.default_rng(0)
    improving = 1.0 - 0.02 * np.arange(60)
    return {
        "random": rng.uniform(0.5, 2.0, 300),
        "flat": np.full(500, 0.7),
        "noisy_descent": np.exp(-np.arange(300) / 80) + rng.normal(0, 0.02, 300),
        "below_threshold": 1.0 * (1 - 5e-5) ** np.arange(200),  # rel improvement < 1e-4 each epoch
        "five_better_then_flat": np.concatenate([improving[:5], np.full(120, improving[4])]),
        "steps_and_plateaus": np.repeat(rng.uniform(0.1, 1.0, 30), rng.integers(1, 25, 30)),
        "with_nan": np.where(rng.uniform(size=100) < 0.1, np.nan, rng.uniform(0.5, 1.0, 100)),
    }


SETTINGS = {
    "paper": {},
    "patience_0": dict(patience=0),
    "patience_1": dict(patience=1),
    "cooldown": dict(patience=2, cooldown=3),
    "min_lr": dict(patience=3, min_lr=2.5e-5),
    "abs": dict(patience=2, threshold_mode="abs", threshold=0.01),
    "rel_big": dict(patience=1, threshold=0.05, factor=0.5),
    "eps_large": dict(patience=0, eps=1e-4, factor=0.5),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_same_rate_as_pytorch_after_every_epoch(name):
    settings = _settings(**SETTINGS[name])
    for seq_name, losses in _sequences().items():
        ours, _ = _our_rates(losses, settings)
        assert ours == _torch_rates(losses, settings), (name, seq_name)


def test_the_issue_cases():
    """Five improving epochs then flat: PyTorch cuts at epoch 26 (index 25), not 25; after 500
    flat epochs the eps floor holds the rate at 1e-8 (scale 1e-6)."""
    losses = np.concatenate([1.0 - 0.1 * np.arange(5), np.full(495, 0.6)])
    rates, state = _our_rates(losses, _settings())
    assert rates[24] == BASE_LR and rates[25] == pytest.approx(BASE_LR * 0.1)
    assert float(state.scale) == pytest.approx(1e-6)
    demo = _our_rates(np.full(4, 1.0), _settings(patience=1))[0]
    assert demo == pytest.approx([BASE_LR, BASE_LR, BASE_LR * 0.1, BASE_LR * 0.1])


def test_checkpoint_round_trip_resumes_exactly(tmp_path):
    settings = _settings(patience=2, cooldown=1)
    losses = _sequences()["noisy_descent"][:200]
    whole, _ = _our_rates(losses, settings)
    first, state = _our_rates(losses[:77], settings)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "plateau", state)
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "plateau", jax.tree.map(ocp.utils.to_shape_dtype_struct, state))
    assert isinstance(restored, plateau.PlateauState)
    jax.tree.map(np.testing.assert_array_equal, restored, state)
    rest, _ = _our_rates(losses[77:], settings, restored)
    assert first + rest == whole


@pytest.mark.parametrize("key, value, message", [
    ("factor", 1.0, "config.plateau.factor must be in (0, 1)"),
    ("factor", 0.0, "config.plateau.factor must be in (0, 1)"),
    ("patience", -1, "config.plateau.patience must be >= 0"),
    ("cooldown", -1, "config.plateau.cooldown must be >= 0"),
    ("threshold", -1e-4, "config.plateau.threshold must be in [0, 1)"),
    ("threshold", 1.0, "config.plateau.threshold must be in [0, 1)"),
    ("threshold_mode", "relative", "config.plateau.threshold_mode must be rel or abs"),
    ("min_lr", -1e-6, "config.plateau.min_lr must be >= 0"),
    ("eps", -1.0, "config.plateau.eps must be >= 0"),
])
def test_bad_settings_are_one_line_errors(key, value, message):
    settings = _settings()
    settings[key] = value
    with pytest.raises(HSNetError) as e:
        check_plateau(settings)
    assert message in str(e.value) and "\n" not in str(e.value)
    check_plateau(_settings(patience=0, threshold=5.0, threshold_mode="abs"))  # abs allows >= 1
