r"""Train-step throughput in each data placement, side by side in one run.

  python -m hsnet_jax.placement_benchmark [--config configs/demo.py] [--steps 40] [--rounds 5]

Builds the run a config describes (its dataset, prepared on first use, its model, batch and
steps_per_dispatch), then trains `--steps` steps in each placement (`device`, `host`,
`stream`, see `hsnet_jax.data.placement`) in turn, `--rounds` times, each placement from its
own copy of the same initial state and over the same batches, reading each dispatch's
metrics one dispatch late as `hsnet_jax.train` does. Prints one JSON object: the median
images/s of each placement, its ratio to `device`, and whether the three ended with the same
weights (they must: the same batches, the same step code after the gather).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from hsnet_jax import plateau, train, train_step
from hsnet_jax.data import BatchSampler
from hsnet_jax.data.placement import build_feeder
from hsnet_jax.models import create_model

PLACEMENTS = ("device", "host", "stream")


def load_config(path: str):
    spec = importlib.util.spec_from_file_location("benchmark_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.py")
    parser.add_argument("--dataset", default="", help="instead of the config's")
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per placement and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    config.data_dir = args.data_dir
    config.dataset = args.dataset or config.dataset
    source, _ = train.load_data(config)
    split = source.load()
    mesh = train_step.make_mesh()
    model = create_model(config, len(source.class_names), bn_axis_name=train_step.DATA)
    variables = jax.jit(lambda: model.init(jax.random.key(config.seed),
                                           jnp.zeros((1, config.image_size, config.image_size, 3)),
                                           train=False))()
    tx = train_step.make_optimizer(variables["params"], freeze_stem=False, **config.optimizer)
    initial = train_step.create_train_state(jax.tree.map(np.asarray, variables), tx, plateau.init_state())
    steps = {gathered: train_step.make_train_step(model, tx, mesh, image_size=config.image_size,
                                                  max_rotation=config.max_rotation, seed=config.seed,
                                                  gathered=gathered) for gathered in (False, True)}
    feeders = {p: build_feeder(p, mesh, source, split) for p in PLACEMENTS}
    states = {p: train_step.replicate(mesh, initial) for p in PLACEMENTS}
    sampler = BatchSampler(len(source), config.batch_size, config.seed,
                           process_index=jax.process_index(), process_count=jax.process_count())
    k = config.steps_per_dispatch
    needed = 2 * k + args.rounds * args.steps
    rows = np.concatenate([sampler.epoch_indices(e) for e in range(-(-needed // sampler.steps_per_epoch))])

    def run(placement: str, first: int, count: int) -> float:
        """Trains `count` steps from step `first` (of consecutive epochs); returns images/s."""
        feeder, state, pending = feeders[placement], states[placement], None
        start = time.perf_counter()
        for _, inputs in feeder.dispatches(rows[first:first + count], 0, k):
            state, metrics = steps[feeder.gathered](state, *inputs)
            if pending is not None:
                np.asarray(pending["loss"])
            pending = metrics
        np.asarray(pending["loss"])
        states[placement] = state
        return count * config.batch_size / (time.perf_counter() - start)

    for p in PLACEMENTS:  # compiles
        run(p, 0, 2 * k)
    rates = {p: [] for p in PLACEMENTS}
    for r in range(args.rounds):
        first = 2 * k + r * args.steps
        for i in range(len(PLACEMENTS)):  # a different placement goes first each round
            p = PLACEMENTS[(r + i) % len(PLACEMENTS)]
            rates[p].append(run(p, first, args.steps))
    median = {p: statistics.median(v) for p, v in rates.items()}
    params = {p: jax.tree.leaves(states[p].params) for p in PLACEMENTS}
    result = {
        "config": args.config, "dataset": config.dataset, "train_images": len(source),
        "batch_size": config.batch_size, "image_size": config.image_size, "steps_per_dispatch": k,
        "steps_per_round": args.steps, "rounds": args.rounds, "device": str(jax.devices()[0]),
        "device_count": jax.device_count(),
        "train_images_per_s": {p: round(v, 1) for p, v in median.items()},
        "ratio_to_device": {p: round(v / median["device"], 3) for p, v in median.items()},
        "per_round_images_per_s": {p: [round(x, 1) for x in v] for p, v in rates.items()},
        "same_weights": all(all(np.array_equal(a, b) for a, b in zip(params["device"], params[p]))
                            for p in PLACEMENTS[1:]),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
