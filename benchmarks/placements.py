r"""Train-step throughput in each data placement, side by side in one run.

  python -m benchmarks.placements --config configs/demo.py [--config.KEY=VALUE ...] [--steps 40] [--rounds 5]

Builds the run a config describes (its dataset, prepared on first use, its model, batch and
steps_per_dispatch), then trains `--steps` steps in each placement (`device`, `host`,
`stream`, see `hsnet_jax.training.placement`) in turn, `--rounds` times, each placement from its
own copy of the same initial state and over the same batches, reading each dispatch's
metrics one dispatch late as `hsnet_jax.train` does. Prints one JSON object: the median
images/s of each placement, its ratio to `device`, and whether the three ended with the same
weights (they must: the same batches, the same step code after the gather).
"""

from __future__ import annotations

import json
import statistics
import time

import jax
import ml_collections
import numpy as np
from absl import flags
from ml_collections import config_flags

from hsnet_jax.models import create_model, init_variables
from hsnet_jax.runtime import cli
from hsnet_jax.runtime.devices import DATA, make_mesh, replicate
from hsnet_jax.training import load_data, plateau, train_step
from hsnet_jax.training.placement import build_feeder
from hsnet_jax.training.sampler import BatchSampler

PLACEMENTS = ("device", "host", "stream")


def measure(config: ml_collections.ConfigDict, steps: int = 40, rounds: int = 5) -> dict:
    """Trains `steps` steps per placement and round, `rounds` times; returns the JSON object."""
    source, _ = load_data(config)
    split = source.load()
    mesh = make_mesh()
    model = create_model(config, len(source.class_names), bn_axis_name=DATA)
    variables = init_variables(model, config.image_size, config.seed)
    tx = train_step.make_optimizer(variables["params"], freeze_stem=False, **config.optimizer)
    initial = train_step.create_train_state(jax.tree.map(np.asarray, variables), tx, plateau.init_state())
    step_fns = {gathered: train_step.make_train_step(model, tx, mesh, image_size=config.image_size,
                                                  max_rotation=config.max_rotation, seed=config.seed,
                                                  gathered=gathered) for gathered in (False, True)}
    feeders = {p: build_feeder(p, mesh, source, split) for p in PLACEMENTS}
    states = {p: replicate(mesh, initial) for p in PLACEMENTS}
    sampler = BatchSampler(len(source), config.batch_size, config.seed,
                           process_index=jax.process_index(), process_count=jax.process_count())
    k = config.steps_per_dispatch
    needed = 2 * k + rounds * steps
    rows = np.concatenate([sampler.epoch_indices(e) for e in range(-(-needed // sampler.steps_per_epoch))])

    def run(placement: str, first: int, count: int) -> float:
        """Trains `count` steps from step `first` (of consecutive epochs); returns images/s."""
        feeder, state, pending = feeders[placement], states[placement], None
        start = time.perf_counter()
        for _, inputs in feeder.dispatches(rows[first:first + count], 0, k):
            state, metrics = step_fns[feeder.gathered](state, *inputs)
            if pending is not None:
                np.asarray(pending["loss"])
            pending = metrics
        np.asarray(pending["loss"])
        states[placement] = state
        return count * config.batch_size / (time.perf_counter() - start)

    for p in PLACEMENTS:  # compiles
        run(p, 0, 2 * k)
    rates = {p: [] for p in PLACEMENTS}
    for r in range(rounds):
        first = 2 * k + r * steps
        for i in range(len(PLACEMENTS)):  # a different placement goes first each round
            p = PLACEMENTS[(r + i) % len(PLACEMENTS)]
            rates[p].append(run(p, first, steps))
    median = {p: statistics.median(v) for p, v in rates.items()}
    params = {p: jax.tree.leaves(states[p].params) for p in PLACEMENTS}
    result = {
        "dataset": config.dataset, "train_images": len(source),
        "batch_size": config.batch_size, "image_size": config.image_size, "steps_per_dispatch": k,
        "steps_per_round": steps, "rounds": rounds, "device": str(jax.devices()[0]),
        "device_count": jax.device_count(),
        "train_images_per_s": {p: round(v, 1) for p, v in median.items()},
        "ratio_to_device": {p: round(v / median["device"], 3) for p, v in median.items()},
        "per_round_images_per_s": {p: [round(x, 1) for x in v] for p, v in rates.items()},
        "same_weights": all(all(np.array_equal(a, b) for a, b in zip(params["device"], params[p]))
                            for p in PLACEMENTS[1:]),
    }
    return result


def main(argv: list[str]) -> int:
    print(json.dumps(measure(flags.FLAGS.config, flags.FLAGS.steps, flags.FLAGS.rounds), indent=2))
    return 0


def define_flags() -> None:
    config_flags.DEFINE_config_file("config", "configs/demo.py", "Training config file.", lock_config=True)
    flags.DEFINE_integer("steps", 40, "Timed steps per placement and round.")
    flags.DEFINE_integer("rounds", 5, "Rounds (a different placement goes first each round).")


if __name__ == "__main__":
    cli.run_config_command(define_flags, main, preload=("hsnet_jax.training.loop",))
