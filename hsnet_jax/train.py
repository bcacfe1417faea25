r"""Trains HSNet with the paper's recipe on any number of devices and hosts, resumably.

  python -m hsnet_jax.train --config configs/raf.py [--workdir DIR] [--config.KEY=VALUE ...]

The default workdir is ./workdirs/<config file name> (e.g. workdirs/raf). Re-running the
same command on a workdir that holds a checkpoint resumes it; the run then ends with the
same weights as one that was never interrupted (the batches, the augmentation and the
optimiser state all follow from the checkpoint). SIGTERM or Ctrl-C save at the next dispatch
boundary and exit with status 143 / 130. A second trainer on the same workdir stops at once
(`hsnet_jax.runlock`). What a run leaves is described in docs/training.md ("## Outputs of a run").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from jax.experimental import multihost_utils
from ml_collections import config_flags

from hsnet_jax import checkpoint, cli, distributed, plateau, runlock, seeds, train_step
from hsnet_jax.config import check_config
from hsnet_jax.epoch_log import EpochLog
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import create_model
from hsnet_jax.runtime.progress import Progress


def load_data(config: ml_collections.ConfigDict):
    """(train SplitSource, opened not read; validation Split); the generated `synthetic` set is prepared when missing
    (by process 0 while the others wait, so hosts sharing a file system do not race)."""
    from hsnet_jax import data  # TFDS is imported here, not by the step

    data_dir = config.data_dir or None
    try:
        train = data.open_split(config.dataset, "train", data_dir)
    except data.DatasetNotPreparedError:
        if config.dataset.split("/")[0] != "synthetic":
            raise
        train = None
    if jax.process_count() > 1:  # process 0 decides, everyone follows
        missing = bool(multihost_utils.broadcast_one_to_all(np.asarray(train is None)))
    else:
        missing = train is None
    if missing:
        if jax.process_index() == 0:
            _say(f"preparing the generated dataset {config.dataset} (once) ...")
            data.prepare_dataset(config.dataset, data_dir)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("hsnet_jax prepared the generated dataset")
        train = data.open_split(config.dataset, "train", data_dir)
    val = data.load_split(config.dataset, "validation", data_dir)
    if config.max_train_examples:
        train = train.first(config.max_train_examples)
    if config.max_eval_examples:
        val = _first(val, config.max_eval_examples)
    return train, val


def _first(split, n: int):
    """The first `n` examples of a Split (config.max_eval_examples, for smoke runs)."""
    return dataclasses.replace(split, images=split.images[:n], labels=split.labels[:n],
                               metadata={k: v[:n] for k, v in split.metadata.items()})


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir`, then evaluates its best checkpoint on the
    test split. Returns the test report of `hsnet_jax.evaluate.evaluate_workdir`; raises
    `cli.Stopped` when SIGTERM / Ctrl-C stopped the run (after saving)."""
    check_config(config)
    with runlock.hold(workdir):
        return _train_and_evaluate(config, os.path.abspath(workdir))


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    from hsnet_jax import data
    from hsnet_jax.data.placement import make_feeder

    mesh = train_step.make_mesh()
    check_config(config, mesh.devices.size)
    train_step.check_batch_size(config.batch_size, mesh)
    train, val = load_data(config)
    num_classes = len(train.class_names)
    config = _resolved(config)
    arch = dict(num_classes=num_classes, use_dib=config.model.use_dib, use_fgal=config.model.use_fgal,
                fgal_standardize=config.model.fgal_standardize)
    run = checkpoint.run_identity(config, train.class_names)

    latest = checkpoint.open_manager(workdir, "latest", keep=config.checkpoint_keep)
    best = checkpoint.open_manager(workdir, "best", keep=1)
    if latest.latest_step() is not None:  # refuse another run before spending time on compiling
        with contextlib.suppress(checkpoint.DamagedCheckpointError):  # named and moved aside below
            checkpoint.check_same_run(checkpoint.read_meta(workdir, "latest"), run,
                                      checkpoint.checkpoint_dir(workdir, "latest"))

    model = create_model(config, num_classes, bn_axis_name=train_step.DATA)
    variables = jax.jit(lambda: model.init(jax.random.key(config.seed),
                                           jnp.zeros((1, config.image_size, config.image_size, 3)),
                                           train=False))()
    if config.ktl.stem_checkpoint:
        from hsnet_jax.pretrained import load_stem_into
        variables = load_stem_into(variables, config.ktl.stem_checkpoint)
    tx = train_step.make_optimizer(variables["params"], freeze_stem=model.freeze_stem, **config.optimizer)
    state = train_step.replicate(mesh, train_step.create_train_state(variables, tx, plateau.init_state()))

    meta = dict(epoch=0, step_in_epoch=0, train_loss_sum=0.0, train_accuracy_sum=0.0,
                best_val_accuracy=-1.0, best_epoch=-1, class_names=list(train.class_names),
                dataset=config.dataset, image_size=config.image_size, run=run, **arch)
    latest, resume, restored = checkpoint.restore_newest_intact(
        workdir, latest, config.checkpoint_keep,
        _abstract({"params": state.params, "batch_stats": state.batch_stats}),
        _abstract({"step": state.step, "opt_state": state.opt_state, "plateau": state.plateau}), _say)
    if resume is not None:
        v, t, meta = restored
        state = state.replace(params=v["params"], batch_stats=v["batch_stats"], **t)
        _say(f"resuming {workdir} at epoch {meta['epoch'] + 1}, step {meta['step_in_epoch']} of the epoch "
             f"(global step {resume})")
    checkpoint.save_run_config(workdir, config)

    sampler = data.BatchSampler(len(train), config.batch_size, config.seed,
                                process_index=jax.process_index(), process_count=jax.process_count())
    feeder = make_feeder(config, mesh, train)  # config.data_placement: where the split lives
    step_fn = train_step.make_train_step(model, tx, mesh, image_size=config.image_size,
                                         max_rotation=config.max_rotation, seed=config.seed,
                                         gathered=feeder.gathered)
    predict = train_step.make_predict_fn(model, config.image_size, mesh, config.eval_batch_size)
    logger = EpochLog(workdir, meta["epoch"])
    stop = cli.StopRequest(_say)
    loop = _Loop(config, workdir, mesh, sampler, feeder, val, step_fn, predict, latest, best, logger, stop)
    try:
        loop.run(state, meta)
    finally:
        try:
            checkpoint.wait(latest)  # a Ctrl-C during the save is ignored until here
            checkpoint.wait(best)
        finally:
            logger.close()
            stop.restore()
    if stop.received:
        raise cli.Stopped(stop.signum)
    if jax.process_index() == 0:
        from hsnet_jax.figures import plot_history
        plot_history(workdir)
    from hsnet_jax.evaluate import evaluate_workdir
    return evaluate_workdir(workdir, split="test", which="best", data_dir=config.data_dir or None)


def _resolved(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config as run: data_dir made explicit."""
    from hsnet_jax import data
    config = ml_collections.ConfigDict(config.to_dict())
    config.data_dir = os.path.abspath(config.data_dir or data.default_data_dir())
    return config


def _say(message: str) -> None:
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class _Loop:
    """The epoch loop: everything it needs besides the (state, meta) it advances."""

    config: ml_collections.ConfigDict
    workdir: str
    mesh: Any
    sampler: Any
    feeder: Any  # each dispatch's inputs, from where config.data_placement put the training set
    val: Any  # the validation Split, on the host
    step_fn: Any
    predict: Any
    latest: Any  # checkpoint managers
    best: Any
    logger: EpochLog
    stop: cli.StopRequest

    def run(self, state: train_step.TrainState, meta: dict[str, Any]) -> None:
        """Trains from the position in `meta` to the last epoch or the first SIGTERM / Ctrl-C."""
        steps = self.sampler.steps_per_epoch
        for epoch in range(meta["epoch"], self.config.num_epochs):
            t0 = time.perf_counter()
            start = meta["step_in_epoch"]
            state, meta = self._train(state, meta, epoch)
            train_seconds = time.perf_counter() - t0
            if meta["step_in_epoch"] < steps:  # stopped by a signal inside the epoch
                _save_latest(self.latest, state, meta)
                checkpoint.wait(self.latest)
                _say(f"{self.stop.name}: saved epoch {epoch + 1} step {meta['step_in_epoch']} in {self.workdir}; "
                     "rerun the same command to resume")
                return
            state, meta, record = self._validate_and_save(state, meta, epoch)
            record.update(images_per_s=(steps - start) * self.config.batch_size / train_seconds,
                          train_seconds=train_seconds, epoch_seconds=time.perf_counter() - t0)
            self.logger.write(record)
            _say(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} | "
                 f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f} "
                 f"mAcc {record['val_mean_accuracy']:.4f} | lr x{record['lr_scale']:g} | "
                 f"{record['images_per_s']:.1f} img/s")
            if self.stop.agreed():
                checkpoint.wait(self.latest)
                _say(f"{self.stop.name}: saved after epoch {epoch + 1} in {self.workdir}; "
                     "rerun the same command to resume")
                return

    def _train(self, state, meta, epoch: int):
        """The epoch's train steps from meta["step_in_epoch"] on, `steps_per_dispatch` per call,
        until the epoch ends or a SIGTERM / Ctrl-C arrives."""
        k, steps = self.config.steps_per_dispatch, self.sampler.steps_per_epoch
        rows = self.sampler.epoch_indices(epoch)
        start = meta["step_in_epoch"]
        bar = Progress(steps, f"epoch {epoch + 1}/{self.config.num_epochs}", "step", initial=start,
                       disable=jax.process_index() != 0)
        t0 = time.perf_counter()
        pending = None  # (first step, metrics) of the dispatch in flight: read after the next one
        with contextlib.closing(self.feeder.dispatches(rows, start, k)) as dispatches:
            for first, inputs in dispatches:
                if self.stop.agreed():
                    break
                state, metrics = self.step_fn(state, *inputs)
                if pending:
                    meta = _account(meta, *pending, epoch, steps, bar, t0, self.config.batch_size)
                pending = (first, metrics)
        if pending:
            meta = _account(meta, *pending, epoch, steps, bar, t0, self.config.batch_size)
        bar.close()
        return state, meta

    def _validate_and_save(self, state, meta, epoch: int):
        """Validation, reduce-on-plateau, the epoch's checkpoints; returns the metrics record."""
        from hsnet_jax.metrics import classification_report

        steps = self.sampler.steps_per_epoch
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        logits = self.predict(variables, self.val.images)
        val_loss = cross_entropy(logits, self.val.labels)
        report = classification_report(self.val.labels, logits.argmax(-1), self.val.class_names)
        # The record holds the rate this epoch trained with; the scheduler then sets the next one's.
        base_lr = self.config.optimizer.learning_rate
        lr = plateau.rate(base_lr, int(plateau.host_value(state.plateau.reductions)), self.config.plateau)
        new_plateau = plateau.step(state.plateau, val_loss, base_lr, self.config.plateau)
        state = state.replace(plateau=train_step.replicate(self.mesh, new_plateau))
        record = dict(epoch=epoch, lr_scale=lr / base_lr, learning_rate=lr,
                      train_loss=meta["train_loss_sum"] / steps, train_accuracy=meta["train_accuracy_sum"] / steps,
                      val_loss=val_loss, val_accuracy=report["accuracy"], val_mean_accuracy=report["mean_accuracy"])
        meta = dict(meta, epoch=epoch + 1, step_in_epoch=0, train_loss_sum=0.0, train_accuracy_sum=0.0)
        if record["val_accuracy"] > meta["best_val_accuracy"]:
            meta.update(best_val_accuracy=record["val_accuracy"], best_epoch=epoch)
            checkpoint.save(self.best, int(state.step), variables, dict(meta, metrics=record))
            checkpoint.wait(self.best)  # on disk before the free space for `latest` is measured
        _save_latest(self.latest, state, dict(meta, metrics=record))
        return state, meta, record


def _account(meta, first, metrics, epoch, steps_per_epoch, bar, t0, batch_size):
    """Folds one dispatch's per-step metrics into the epoch sums; a non-finite loss stops the run."""
    losses = np.asarray(metrics["loss"])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        step = first + bad[0] + 1
        raise HSNetError(
            f"non-finite training loss ({losses[bad[0]]}) at epoch {epoch + 1}, step {step} of the epoch "
            f"(global step {epoch * steps_per_epoch + step}); stopped without saving, the last good "
            "checkpoint is kept. Lower config.optimizer.learning_rate or try config.dtype=float32")
    meta = dict(meta, step_in_epoch=first + len(losses),
                train_loss_sum=meta["train_loss_sum"] + float(losses.sum()),
                train_accuracy_sum=meta["train_accuracy_sum"] + float(np.asarray(metrics["accuracy"]).sum()))
    if not bar.disable:  # processes other than 0 show no bar
        rate = (meta["step_in_epoch"] - bar.initial) * batch_size / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", img_s=f"{rate:.1f}")
    bar.update(len(losses))
    return meta


def _save_latest(manager, state, meta) -> None:
    step = int(state.step)
    if manager.latest_step() == step:  # nothing ran since (e.g. SIGTERM right after a resume)
        return
    checkpoint.save(manager, step, {"params": state.params, "batch_stats": state.batch_stats}, meta,
                    train={"step": state.step, "opt_state": state.opt_state, "plateau": state.plateau})


def default_workdir(config_file: str) -> str:
    return os.path.join("workdirs", os.path.splitext(os.path.basename(config_file))[0])


def main(argv) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    config = flags.FLAGS.config
    workdir = flags.FLAGS.workdir or default_workdir(flags.FLAGS["config"].config_filename)
    distributed.initialize_distributed(config)
    seed_list = seeds.parse_seeds(flags.FLAGS.seeds) if flags.FLAGS.seeds else [config.seed]
    if len(seed_list) > 1:  # a signal raises cli.Stopped from the seed in training
        summary = seeds.run_seeds(config, workdir, seed_list, train_and_evaluate)
        _say(seeds.summary_line(summary) + f"\nwrote {os.path.join(os.path.abspath(workdir), 'seeds.json')}")
        return 0
    config.seed = seed_list[0]
    report = train_and_evaluate(config, workdir)
    _say(f"test accuracy {report['accuracy']:.4f}, mean accuracy {report['mean_accuracy']:.4f}\n"
         f"run directory {os.path.abspath(workdir)}:\n"
         "  config.json            the resolved config\n"
         "  metrics.jsonl          one line per epoch (losses, accuracies, lr scale, images/s)\n"
         "  training_curves.png    loss and accuracy per epoch\n"
         "  tensorboard/           TensorBoard events (tensorboard --logdir ...)\n"
         "  checkpoints/latest|best  orbax checkpoints (restore: hsnet_jax.checkpoint.restore_variables)\n"
         "  eval/test_metrics.json, eval/test_confusion_matrix.png  the best checkpoint on the test split\n"
         "  eval/test_examples.png, eval/test_gates.png  Fig. 5 faces; FGAL's gates per class (with FGAL)")
    return 0


def define_flags() -> None:
    """The CLI flags; defined only when run as a program, so importing this module (as
    `evaluate` and `ablate` do) defines nothing."""
    config_flags.DEFINE_config_file("config", None, "Training config file, e.g. configs/raf.py.",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Run directory (default ./workdirs/<config name>).")
    flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2: one run per seed in "
                        "WORKDIR/seed_<n> and their mean ± sample std in WORKDIR/seeds.json "
                        "(one seed: config.seed, today's layout).")
    flags.mark_flag_as_required("config")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, with a bad config file or override (which ml_collections reports as
    AttributeError, KeyError, TypeError, ValueError or OSError) as a one-line error, not a traceback."""
    try:
        argv = flags.FLAGS(argv)
        flags.FLAGS.config.keys()  # the config file is loaded lazily: fail here, not later
        return argv
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
        while e.args and isinstance(e.args[0], BaseException):  # ml_collections wraps its KeyError
            e = e.args[0]
        message = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(lambda argv: sys.exit(cli.run(main, argv)), flags_parser=parse_flags)
