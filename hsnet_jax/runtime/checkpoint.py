"""A run's checkpoints: orbax `CheckpointManager`s under WORKDIR/checkpoints.

    WORKDIR/checkpoints/latest/<step>/  every epoch end (and a SIGTERM stop), the last
                                        `checkpoint_keep` kept; items `variables`, `train`, `meta`
    WORKDIR/checkpoints/best/<step>/    the best epoch by validation accuracy; `variables`, `meta`

`variables` = {"params", "batch_stats"} (what the model needs), `train` = step, optimiser and
reduce-on-plateau state (what resuming needs), `meta` = JSON: where in the run the checkpoint
was taken and which network and classes it holds, so a checkpoint of another architecture or
class count is refused by name, and `run` (`run_identity`), so a resume into another run is too.

A checkpoint that cannot be read (truncated or missing array files after a storage failure
or a partial copy) is reported by name; resuming moves it aside to
WORKDIR/checkpoints/damaged/<which>-<step>-<time> (kept for inspection, out of orbax's sight)
and takes the newest intact one. A save that does not fit on the disk is refused before
anything is written (one line naming the directory); one that fails while writing (the disk
filled meanwhile) ends in one line too. Either way the earlier checkpoints are intact: orbax
writes into a temporary directory and renames it only when complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from typing import Any, Callable, Iterable, Mapping

import jax
import ml_collections
import orbax.checkpoint as ocp
import tensorstore as ts
from etils import epath

from hsnet_jax.config import base_config, check_config
from hsnet_jax.errors import HSNetError
from hsnet_jax.runtime import logs

WHICH = ("latest", "best")
# The meta fields that fix the shapes of the variables, with the value a checkpoint written
# before the field existed holds.
ARCHITECTURE_KEYS = ("num_classes", "use_dib", "use_fgal", "fgal_standardize")
_ARCHITECTURE_DEFAULTS = {"fgal_standardize": True}


def checkpoint_dir(workdir: str, which: str) -> str:
    if which not in WHICH:
        raise HSNetError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
    return os.path.join(os.path.abspath(workdir), "checkpoints", which)


def open_manager(workdir: str, which: str, keep: int = 1, read_only: bool = False) -> ocp.CheckpointManager:
    """The manager of WORKDIR/checkpoints/<which>; saves are asynchronous (the copy to host is
    not, so the next step may reuse the donated buffers at once). `read_only` managers only
    restore (orbax's own read_only option is not used: it logs warnings on every open). A
    writing manager removes the partial checkpoints a killed or failed save left behind."""
    items = ("variables", "train", "meta") if which == "latest" else ("variables", "meta")
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                           enable_async_checkpointing=not read_only,
                                           cleanup_tmp_directories=not read_only)  # left by a kill
    manager = ocp.CheckpointManager(checkpoint_dir(workdir, which), options=options, item_names=items)
    # orbax removes those leftovers on a thread it waits for only at the first save (its
    # `close` does not): a run that fails before saving would log from that thread after its
    # error, or at interpreter shutdown. Waited for here, inside the opener's `with` block.
    getattr(manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
    return manager


def _not_orbax(record: logging.LogRecord) -> bool:
    return f"{os.sep}orbax{os.sep}" not in record.pathname


def saves_reported_here() -> contextlib.AbstractContextManager[None]:
    """While a run saves: orbax's own log records are dropped (it logs every failure of its
    background save threads at ERROR with a traceback, and warns about waiting for a previous
    save); the run reports a failed save itself, as one line (`save`, `wait`). Only for the
    `with` block of the run that owns the managers, never process-wide."""
    return logs.dropped(_not_orbax)


SPACE_MARGIN = 1.1  # free space a save needs, as a multiple of the arrays' bytes
_READS_AT_ONCE = 64  # values check_readable holds in memory at a time


class DamagedCheckpointError(HSNetError):
    """A checkpoint whose files cannot be read back."""


def _root_reason(e: BaseException, limit: int = 200) -> str:
    """The innermost cause of `e`, on one line."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    reason = " ".join(str(e).split())
    return reason if len(reason) < limit else reason[:limit] + " ..."


def check_readable(path: str, items: Iterable[str]) -> None:
    """Reads every value checkpoint `path` stores for `items` (their OCDBT databases: the
    arrays and their zarr metadata) and raises DamagedCheckpointError naming the first that
    cannot be read. Every restore runs it before orbax reads the arrays, because a failed orbax
    restore leaves reads behind: orbax gathers them with `asyncio.gather`, which passes the
    first failure on at once, in an event loop it then closes without awaiting the others; they
    end later on TensorStore's threads and in the garbage collector, each with a traceback
    (docs/design.md, "Damaged checkpoints"). Here every read is a TensorStore future waited
    for in turn, with no event loop, so a failure leaves nothing behind."""
    for item in items:
        directory = os.path.join(path, item)
        try:
            if not os.path.isfile(os.path.join(directory, "manifest.ocdbt")):
                raise HSNetError(f"{item}/manifest.ocdbt is missing")
            store = ts.KvStore.open({"driver": "ocdbt", "base": f"file://{directory}/"}).result()
            keys = store.list().result()
            for start in range(0, len(keys), _READS_AT_ONCE):
                reads = [(key, store.read(key)) for key in keys[start:start + _READS_AT_ONCE]]
                errors = [f"{item}/{key.decode(errors='replace')}: {e}" for key, read in reads
                          if (e := read.exception()) is not None]  # waits for each
                if errors:
                    raise HSNetError(errors[0])
        except Exception as e:  # TensorStore's errors are ValueErrors
            raise _damaged(path, e) from None


def _restore(manager: ocp.CheckpointManager, step: int, args: ocp.args.Composite) -> Any:
    """`manager.restore` after `check_readable`, with any failure to read the files as one
    DamagedCheckpointError."""
    path = os.path.join(str(manager.directory), str(step))
    check_readable(path, [item for item in args.keys() if item != "meta"])
    try:
        return manager.restore(step, args=args)
    except HSNetError:
        raise
    except Exception as e:  # TensorStore, orbax and JSON errors have no common type
        raise _damaged(path, e) from None


def _damaged(path: str, e: Exception) -> DamagedCheckpointError:
    """The one-line error for checkpoint `path`, whose read failed with `e`."""
    return DamagedCheckpointError(f"checkpoint {path} cannot be read ({_root_reason(e)})")


def move_aside(workdir: str, which: str, step: int) -> str:
    """Moves checkpoint `step` of `which` to checkpoints/damaged/ and returns where it went."""
    damaged = os.path.join(os.path.abspath(workdir), "checkpoints", "damaged")
    os.makedirs(damaged, exist_ok=True)
    target = os.path.join(damaged, f"{which}-{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(os.path.join(checkpoint_dir(workdir, which), str(step)), target)
    return target


def save(manager: ocp.CheckpointManager, step: int, variables: Mapping[str, Any], meta: Mapping[str, Any],
         train: Any = None) -> None:
    """Starts writing checkpoint `step` (returns once the arrays are on the host); refuses,
    before writing anything, a checkpoint that does not fit in the free space."""
    need = SPACE_MARGIN * sum(leaf.nbytes for leaf in jax.tree.leaves((dict(variables), train)))
    free = shutil.disk_usage(manager.directory).free
    if need > free:
        raise HSNetError(f"no space left for checkpoint {step} in {manager.directory}: it needs "
                         f"{need / 2**20:.0f} MiB, {free / 2**20:.0f} MiB are free; the earlier checkpoints "
                         "are intact: free some space and rerun to resume")
    items = dict(variables=ocp.args.StandardSave(dict(variables)), meta=ocp.args.JsonSave(dict(meta)))
    if train is not None:
        items["train"] = ocp.args.StandardSave(train)
    try:
        manager.save(step, args=ocp.args.Composite(**items))
    except Exception as e:  # the previous asynchronous save failed
        raise _write_error(manager, e) from None


def wait(manager: ocp.CheckpointManager) -> None:
    """Waits for the asynchronous save in flight; a failed one becomes one HSNetError."""
    try:
        manager.wait_until_finished()
    except Exception as e:
        raise _write_error(manager, e) from None


def _write_error(manager: ocp.CheckpointManager, e: Exception) -> HSNetError:
    return HSNetError(f"writing a checkpoint in {manager.directory} failed ({_root_reason(e)}); the earlier "
                      "checkpoints are intact: fix the cause and rerun to resume")


def _manager_with_checkpoint(workdir: str, which: str) -> tuple[ocp.CheckpointManager, int]:
    directory = checkpoint_dir(workdir, which)
    if not os.path.isdir(directory):
        raise HSNetError(f"no {which} checkpoint in {workdir} (no {directory}); train first")
    manager = open_manager(workdir, which, read_only=True)
    step = manager.latest_step()
    if step is None:
        raise HSNetError(f"no finished {which} checkpoint in {directory}")
    return manager, step


def check_architecture(meta: Mapping[str, Any], expected: Mapping[str, Any], where: str) -> None:
    """Raises HSNetError naming every architecture field where a checkpoint and a run differ."""
    meta = {**_ARCHITECTURE_DEFAULTS, **meta}
    diffs = [f"{k}: checkpoint {meta.get(k)!r}, expected {expected[k]!r}"
             for k in ARCHITECTURE_KEYS if k in expected and meta.get(k) != expected[k]]
    if diffs:
        raise HSNetError(f"the checkpoint in {where} is of another network ({'; '.join(diffs)}); "
                         "use another --workdir")


def run_identity(config: ml_collections.ConfigDict, class_names) -> dict[str, Any]:
    """What makes a run this run: resuming with any of it changed is refused (`check_same_run`).
    The whole `config.model` is compared, so a model option added later is covered too."""
    stem = config.ktl.stem_checkpoint
    return dict(dataset=config.dataset, class_names=list(class_names), image_size=config.image_size,
                ktl_stem_checkpoint=os.path.abspath(stem) if stem else "", model=config.model.to_dict(),
                class_balance=config.class_balance)


# Run-record keys added after checkpoints were first written, with the value those runs had.
_RUN_DEFAULTS = {"class_balance": "none"}


def check_same_run(meta: Mapping[str, Any], run: Mapping[str, Any], where: str) -> None:
    """Raises HSNetError, in one line naming both values, when `where` holds another run.

    A checkpoint written before the `run` record existed is refused too: its reduce-on-plateau
    state is optax's, which this version cannot continue (its variables still load for
    `evaluate` and `predict`)."""
    if "run" not in meta:
        raise HSNetError(f"the checkpoint in {where} was written by an earlier hsnet-jax (optax's "
                         "reduce-on-plateau state, no run record) and cannot be resumed; use another --workdir")
    old = meta["run"]
    diffs = []
    for key, value in run.items():
        if key == "model":  # key by key, so a model option one side lacks is named
            diffs += [f"model.{k}: checkpoint {old[key].get(k)!r}, this run {value.get(k)!r}"
                      for k in sorted(set(old[key]) | set(value)) if old[key].get(k) != value.get(k)]
        elif old.get(key, _RUN_DEFAULTS.get(key)) != value:
            diffs.append(f"{key}: checkpoint {old.get(key, _RUN_DEFAULTS.get(key))!r}, this run {value!r}")
    if diffs:
        raise HSNetError(f"the checkpoint in {where} is of another run ({'; '.join(diffs)}); "
                         "resume with its settings or use another --workdir")


def read_meta(workdir: str, which: str = "best") -> dict[str, Any]:
    """The JSON metadata of the `which` checkpoint: epoch, step, class_names, architecture, metrics."""
    manager, step = _manager_with_checkpoint(workdir, which)
    return dict(_restore(manager, step, ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])


def restore_variables(workdir: str, which: str = "latest", *,
                      expected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`{"params", "batch_stats"}` of the `which` ("latest" | "best") checkpoint of a run.

    `expected` (e.g. {"num_classes": 7, "use_dib": True}) is checked against the checkpoint's
    metadata first, so loading into another network fails with the differing fields named.
    """
    manager, step = _manager_with_checkpoint(workdir, which)
    if expected:
        check_architecture(read_meta(workdir, which), expected, checkpoint_dir(workdir, which))
    # Replicated on this process's devices, whatever devices wrote it (a multi-process run's
    # checkpoint is read by a one-process `evaluate`).
    where = os.path.join(str(manager.directory), str(step))
    check_readable(where, ["variables"])  # orbax's metadata opens every array
    try:
        stored = ocp.StandardCheckpointHandler().metadata(epath.Path(where) / "variables").tree
    except Exception as e:
        raise _damaged(where, e) from None
    replicated = jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ("all",)), jax.sharding.PartitionSpec())
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=replicated), stored)
    restored = _restore(manager, step, ocp.args.Composite(variables=ocp.args.StandardRestore(target)))
    variables = restored["variables"]
    return {"params": variables["params"], "batch_stats": variables["batch_stats"]}


def restore_train(manager: ocp.CheckpointManager, step: int, abstract_variables: Any,
                  abstract_train: Any) -> tuple[Any, Any, dict[str, Any]]:
    """(variables, train state, meta) of checkpoint `step`, laid out like the given abstract
    trees (shapes, dtypes and shardings), for resuming."""
    check_readable(os.path.join(str(manager.directory), str(step)), ["variables", "train"])
    try:
        restored = manager.restore(step, args=ocp.args.Composite(
            variables=ocp.args.StandardRestore(abstract_variables),
            train=ocp.args.StandardRestore(abstract_train),
            meta=ocp.args.JsonRestore()))
    except Exception as e:
        # The arrays are readable: damage elsewhere (orbax's JSON metadata), or arrays that do
        # not fit this run's state? Only the former is damage (and moved aside); reading
        # without the target tells them apart.
        _restore(manager, step, ocp.args.Composite(variables=ocp.args.StandardRestore(),
                                                   train=ocp.args.StandardRestore(),
                                                   meta=ocp.args.JsonRestore()))
        raise HSNetError(f"checkpoint {os.path.join(str(manager.directory), str(step))} does not fit this "
                         f"run's training state ({_root_reason(e)}); use another --workdir") from None
    return restored["variables"], restored["train"], dict(restored["meta"])


def restore_newest_intact(workdir: str, manager: ocp.CheckpointManager, keep: int, abstract_variables: Any,
                          abstract_train: Any, say: Callable[[str], None]
                          ) -> tuple[ocp.CheckpointManager, int | None, Any]:
    """(manager, step, restore_train's triple) of the newest readable checkpoint of `manager`
    (WORKDIR's "latest"), or (manager, None, None) when there is none. Unreadable ones are
    named and moved aside (by process 0; the others wait), and the manager is reopened without
    them; when checkpoints exist but none is intact, HSNetError."""
    moved = []
    while (step := manager.latest_step()) is not None:
        try:
            return manager, step, restore_train(manager, step, abstract_variables, abstract_train)
        except DamagedCheckpointError as e:
            if jax.process_index() == 0:
                moved.append(move_aside(workdir, "latest", step))
                say(f"warning: {e}; moved it to {moved[-1]}")
            if jax.process_count() > 1:
                from jax.experimental import multihost_utils
                multihost_utils.sync_global_devices(f"hsnet_jax moved checkpoint {step} aside")
            manager.close()
            manager = open_manager(workdir, "latest", keep=keep)
    if moved:
        manager.close()
        raise HSNetError(f"no intact checkpoint left in {checkpoint_dir(workdir, 'latest')} (the damaged ones are "
                         f"in {os.path.dirname(moved[0])}); rerun to start the run from its beginning")
    return manager, None, None


def config_path(workdir: str) -> str:
    return os.path.join(workdir, "config.json")


def save_run_config(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Writes WORKDIR/config.json (process 0 only)."""
    if jax.process_index() == 0:
        with open(config_path(workdir), "w") as f:
            f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config a run in `workdir` was started with (WORKDIR/config.json), on its
    dataset's `base_config` (a key an older run lacks gets its default) and through the same
    `check_config` as a new run: an edited or damaged file is one line, never a traceback or a
    network answering NaN."""
    path = config_path(workdir)
    try:
        with open(path, "rb") as f:
            stored = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise HSNetError(f"{workdir} is not a training run directory (no config.json)") from None
    except UnicodeDecodeError as e:
        raise HSNetError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02X} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise HSNetError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("dataset"), str):
        raise HSNetError(f"{path} does not hold a run config (a JSON object naming its dataset), "
                         f"got {json.dumps(stored)[:60]}")
    config = base_config(stored["dataset"])
    try:
        config.update(stored)
        check_config(config)
    except (HSNetError, TypeError, ValueError, KeyError, AttributeError) as e:
        raise HSNetError(f"{path}: {e}") from None
    return config
