"""The training loop: `train_and_evaluate(config, workdir)` trains (or resumes) a run with the
paper's recipe on every device of every process, then evaluates its best checkpoint.

Callable in-process (tests, notebooks): it returns the final state, the per-epoch history (what
`metrics.jsonl` holds) and the test report, and can be handed its data and model. Resuming is
exact: the batches, the augmentation and the optimiser state all follow from the checkpoint,
so an interrupted run ends with the same weights as one that was never interrupted. SIGTERM
or Ctrl-C save at the next dispatch boundary and raise `cli.Stopped`.

Model selection is on the validation split only. With `config.report_test_each_epoch` the test
split is also scored after every epoch (`test_accuracy` in metrics.jsonl) so that the report
can show, labelled, the "best epoch on test" number other FER papers publish; nothing reads it
back (the weights are the same with and without it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import linen as nn

from hsnet_jax.config import check_config
from hsnet_jax.errors import HSNetError
from hsnet_jax.inference.forward import make_predict_fn
from hsnet_jax.inference.metrics import cross_entropy
from hsnet_jax.models import architecture, create_model, init_variables
from hsnet_jax.runtime import checkpoint, cli, runlock
from hsnet_jax.runtime.progress import Progress
from hsnet_jax.runtime.devices import DATA, check_batch_size, make_mesh, replicate
from hsnet_jax.training import plateau, train_step
from hsnet_jax.training.epoch_log import EpochLog, best_on_test
from hsnet_jax.training.placement import make_feeder
from hsnet_jax.training.profile import StepProfiler
from hsnet_jax.training.sampler import BatchSampler
from hsnet_jax.training.targets import Targets, class_weights, sampling_weights, training_targets

# In a run of several processes, how many dispatches pass between two agreements on a stop
# request (a host-blocking collective); one process checks its own flag at every dispatch.
STOP_CHECK_EVERY = 8


@dataclasses.dataclass
class TrainResult:
    """What a finished run gives back: the final train state (on the devices), one record per
    epoch (the lines of metrics.jsonl, resumed epochs included) and the best checkpoint's
    test report (`hsnet_jax.inference.evaluation.evaluate_workdir`; None with `evaluate=False`)."""

    state: train_step.TrainState
    history: list[dict[str, Any]]
    report: dict[str, Any] | None


def load_data(config: ml_collections.ConfigDict):
    """(train SplitSource, opened not read; validation Split); the generated `synthetic` set is
    prepared when missing (by process 0 while the others wait, so hosts sharing a file system
    do not race)."""
    from hsnet_jax import data  # TFDS: imported by the loop, never by the step
    from jax.experimental import multihost_utils

    data_dir = config.data_dir or None
    try:
        train = data.open_split(config.dataset, "train", data_dir)
    except data.DatasetNotPreparedError:
        if config.dataset.split("/")[0] != "synthetic":
            raise
        train = None
    missing = train is None
    if jax.process_count() > 1:  # process 0 decides, everyone follows
        missing = bool(multihost_utils.broadcast_one_to_all(np.asarray(missing)))
    if missing:
        if jax.process_index() == 0:
            cli.say(f"preparing the generated dataset {config.dataset} (once) ...")
            data.prepare_dataset(config.dataset, data_dir)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("hsnet_jax prepared the generated dataset")
        train = data.open_split(config.dataset, "train", data_dir)
    val = data.load_split(config.dataset, "validation", data_dir)
    if config.max_train_examples:
        train = train.first(config.max_train_examples)
    if config.max_eval_examples:
        val = val.first(config.max_eval_examples)
    return train, val


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *, data: tuple[Any, Any] | None = None,
                       model: nn.Module | None = None, evaluate: bool = True,
                       profile_steps: tuple[int, int] | None = None, test: Any = None) -> TrainResult:
    """Trains (or resumes) the run in `workdir`, then evaluates its best checkpoint on the test
    split. `data`: (train SplitSource or Split, validation Split) instead of the config's dataset,
    `test`: the Split to test on instead of the dataset's test split (a fold's subjects);
    `model`: an HSNet-like module instead of the config's (its `bn_axis_name` must be "data");
    `profile_steps` (A, B): a `jax.profiler` trace of global steps A to B in WORKDIR/profile.
    Raises `cli.Stopped` when SIGTERM / Ctrl-C stopped the run (after saving)."""
    mesh = make_mesh()
    check_config(config, mesh.devices.size)  # before the lock and anything that takes time
    check_batch_size(config.batch_size, mesh)
    with runlock.hold(workdir), checkpoint.saves_reported_here():
        return _train_and_evaluate(config, os.path.abspath(workdir), mesh, data, model, evaluate, profile_steps,
                                   test)


def _train_and_evaluate(config, workdir, mesh, data, model, evaluate, profile_steps, test) -> TrainResult:
    # The data
    train, val = data or load_data(config)
    class_names = list(train.class_names)
    config = _resolved(config)
    config.data_fingerprints = {"train": train.fingerprint, "validation": val.fingerprint}  # data/fingerprint.py
    run = checkpoint.run_identity(config, class_names)

    # The checkpoints: another run in this workdir is refused before anything compiles
    latest = checkpoint.open_manager(workdir, "latest", keep=config.checkpoint_keep)
    best = checkpoint.open_manager(workdir, "best", keep=1)
    if latest.latest_step() is not None:
        with contextlib.suppress(checkpoint.DamagedCheckpointError):  # named and moved aside below
            checkpoint.check_same_run(checkpoint.read_meta(workdir, "latest"), run,
                                      checkpoint.checkpoint_dir(workdir, "latest"))

    # The model and its train state, restored from the newest intact checkpoint
    model = model if model is not None else create_model(config, len(class_names), bn_axis_name=DATA)
    variables = init_variables(model, config.image_size, config.seed)
    if config.ktl.stem_checkpoint:
        from hsnet_jax.models.pretrained import load_stem_into
        variables = load_stem_into(variables, config.ktl.stem_checkpoint)
    tx = train_step.make_optimizer(variables["params"], freeze_stem=model.freeze_stem, **config.optimizer)
    state = replicate(mesh, train_step.create_train_state(variables, tx, plateau.init_state()))
    meta = dict(epoch=0, step_in_epoch=0, train_loss_sum=0.0, train_accuracy_sum=0.0,
                best_val_accuracy=-1.0, best_epoch=-1, class_names=class_names,
                dataset=config.dataset, image_size=config.image_size, run=run, **architecture(model))
    latest, resume, restored = checkpoint.restore_newest_intact(
        workdir, latest, config.checkpoint_keep,
        _abstract({"params": state.params, "batch_stats": state.batch_stats}),
        _abstract({"step": state.step, "opt_state": state.opt_state, "plateau": state.plateau}), cli.say)
    if resume is not None:
        v, t, meta = restored
        state = state.replace(params=v["params"], batch_stats=v["batch_stats"], **t)
        cli.say(f"resuming {workdir} at epoch {meta['epoch'] + 1}, step {meta['step_in_epoch']} of the epoch "
                f"(global step {resume})")
    checkpoint.save_run_config(workdir, config)

    # The targets, the step, the batches and the validation pass
    feeder = make_feeder(config, mesh, train)  # config.data_placement: where the split lives
    targets = training_targets(config, train if feeder.split is None else feeder.split, len(class_names))
    balanced = config.class_balance == "sampler"
    sampler = BatchSampler(len(train), config.batch_size, config.seed,
                           process_index=jax.process_index(), process_count=jax.process_count(),
                           weights=sampling_weights(targets.labels, len(class_names)) if balanced else None)
    weights = class_weights(targets.labels, len(class_names)) if config.class_balance == "loss" else None
    step_fn = train_step.make_train_step(model, tx, mesh, image_size=config.image_size,
                                         max_rotation=config.max_rotation, seed=config.seed,
                                         gathered=feeder.gathered, class_weights=weights, loss=targets.loss)
    if config.report_test_each_epoch and test is None:
        from hsnet_jax.data import load_split
        test = load_split(config.dataset, "test", config.data_dir)
    predict = make_predict_fn(model, config.image_size, mesh, config.eval_batch_size)

    # The loop
    logger = EpochLog(workdir, meta["epoch"])
    stop = cli.StopRequest(cli.say)
    profiler = StepProfiler(workdir, profile_steps)
    loop = Loop(config, workdir, mesh, sampler, targets, feeder, val, test if config.report_test_each_epoch else None,
                step_fn, predict, latest, best, logger, stop, profiler)
    try:
        state = loop.run(state, meta)
    finally:
        try:
            checkpoint.wait(latest)  # a Ctrl-C during the save is ignored until here
            checkpoint.wait(best)
        finally:
            profiler.close()
            logger.close()
            stop.restore()
    if stop.received:
        raise cli.Stopped(stop.signum)

    # The figures and the test report
    report = None
    if jax.process_index() == 0:
        from hsnet_jax.inference.figures import plot_history
        plot_history(workdir)
    if evaluate:
        from hsnet_jax.inference.evaluation import evaluate_workdir
        on_test = best_on_test(logger.history)
        report = evaluate_workdir(workdir, split="test", which="best", data_dir=config.data_dir or None,
                                  model=model, examples=test,
                                  extra={"best_epoch_on_test": on_test} if on_test else None)
    return TrainResult(state, logger.history, report)


def _resolved(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config as run: data_dir made explicit."""
    from hsnet_jax.data.registry import default_data_dir

    config = ml_collections.ConfigDict(config.to_dict())
    config.data_dir = os.path.abspath(config.data_dir or default_data_dir())
    return config


@dataclasses.dataclass
class Loop:
    """The epoch loop: everything it needs besides the (state, meta) it advances."""

    config: ml_collections.ConfigDict
    workdir: str
    mesh: Any
    sampler: BatchSampler
    targets: Targets  # each epoch's labels or soft targets
    feeder: Any  # each dispatch's inputs, from where config.data_placement put the training set
    val: Any  # the validation Split, on the host
    test: Any  # the test Split with config.report_test_each_epoch, else None
    step_fn: Any
    predict: Any
    latest: Any  # checkpoint managers
    best: Any
    logger: EpochLog
    stop: cli.StopRequest
    profiler: StepProfiler

    def run(self, state: train_step.TrainState, meta: dict[str, Any]) -> train_step.TrainState:
        """Trains from the position in `meta` to the last epoch or the first SIGTERM / Ctrl-C;
        returns the state reached."""
        steps = self.sampler.steps_per_epoch
        for epoch in range(meta["epoch"], self.config.num_epochs):
            t0 = time.perf_counter()
            start = meta["step_in_epoch"]
            state, meta = self.train_epoch(state, meta, epoch)
            train_seconds = time.perf_counter() - t0
            if meta["step_in_epoch"] < steps:  # stopped by a signal inside the epoch
                _save_latest(self.latest, state, meta)
                checkpoint.wait(self.latest)
                cli.say(f"{self.stop.name}: saved epoch {epoch + 1} step {meta['step_in_epoch']} in {self.workdir}; "
                        "rerun the same command to resume")
                return state
            state, meta, record = self.validate_and_save(state, meta, epoch)
            record.update(images_per_s=(steps - start) * self.config.batch_size / train_seconds,
                          train_seconds=train_seconds, epoch_seconds=time.perf_counter() - t0)
            self.logger.write(record)
            cli.say(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} | "
                    f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f} "
                    f"mAcc {record['val_mean_accuracy']:.4f} | lr x{record['lr_scale']:g} | "
                    f"{record['images_per_s']:.1f} img/s"
                    + (f" | test acc {record['test_accuracy']:.4f} (reported only)" if self.test is not None else ""))
            if self.stop.agreed():
                checkpoint.wait(self.latest)
                cli.say(f"{self.stop.name}: saved after epoch {epoch + 1} in {self.workdir}; "
                        "rerun the same command to resume")
                return state
        return state

    def train_epoch(self, state, meta, epoch: int):
        """The epoch's train steps from meta["step_in_epoch"] on, `steps_per_dispatch` per call,
        until the epoch ends or a SIGTERM / Ctrl-C arrives."""
        k, steps = self.config.steps_per_dispatch, self.sampler.steps_per_epoch
        rows = self.sampler.epoch_indices(epoch)
        start = meta["step_in_epoch"]
        bar = Progress(steps, f"epoch {epoch + 1}/{self.config.num_epochs}", "step", initial=start,
                       disable=jax.process_index() != 0)
        t0 = time.perf_counter()
        pending = None  # (first step, metrics) of the dispatch in flight: read after the next one
        targets = self.targets.epoch_targets(epoch)
        with contextlib.closing(self.feeder.dispatches(rows, start, k, targets)) as dispatches:
            for n, (first, inputs) in enumerate(dispatches):
                if self.stop.agreed(check_all=n % STOP_CHECK_EVERY == 0):
                    break
                self.profiler.at(epoch * steps + first, epoch * steps + first + k)
                state, metrics = self.step_fn(state, *inputs)
                if pending:
                    meta = _account(meta, *pending, epoch, steps, bar, t0, self.config.batch_size)
                pending = (first, metrics)
        if pending:
            meta = _account(meta, *pending, epoch, steps, bar, t0, self.config.batch_size)
        bar.close()
        return state, meta

    def validate_and_save(self, state, meta, epoch: int):
        """Validation, reduce-on-plateau, the epoch's checkpoints; returns the metrics record."""
        from hsnet_jax.inference.metrics import classification_report

        steps = self.sampler.steps_per_epoch
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        logits = self.predict(variables, self.val.images)
        val_loss = cross_entropy(logits, self.val.labels)
        report = classification_report(self.val.labels, logits.argmax(-1), self.val.class_names)
        # The record holds the rate this epoch trained with; the scheduler then sets the next one's.
        base_lr = self.config.optimizer.learning_rate
        lr = plateau.rate(base_lr, int(plateau.host_value(state.plateau.reductions)), self.config.plateau)
        new_plateau = plateau.step(state.plateau, val_loss, base_lr, self.config.plateau)
        state = state.replace(plateau=replicate(self.mesh, new_plateau))
        record = dict(epoch=epoch, lr_scale=lr / base_lr, learning_rate=lr,
                      train_loss=meta["train_loss_sum"] / steps, train_accuracy=meta["train_accuracy_sum"] / steps,
                      val_loss=val_loss, val_accuracy=report["accuracy"], val_mean_accuracy=report["mean_accuracy"],
                      train_class_counts=self.targets.class_counts(epoch, self.sampler.epoch_batches(epoch)))
        if self.test is not None:  # reported only: nothing below reads it
            on_test = classification_report(self.test.labels, self.predict(variables, self.test.images).argmax(-1),
                                            self.test.class_names)
            record.update(test_accuracy=on_test["accuracy"], test_mean_accuracy=on_test["mean_accuracy"])
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
