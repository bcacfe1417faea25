"""The eight DIB / FGAL / KTL rows of the paper's Table 6 (what `python -m hsnet_jax.ablate` runs).

Each row is a normal training run (`hsnet_jax.training.train_and_evaluate`) of the given config
with `model.use_dib`, `model.use_fgal` and `ktl.stem_checkpoint` set for the row, in its own
run directory ROOT/<row> (baseline, dib, fgal, ktl, dib_fgal, dib_ktl, fgal_ktl,
dib_fgal_ktl); the default ROOT is ./workdirs/ablation_<config name>. A row is finished when
ROOT/<row>/eval/test_metrics.json exists: finished rows are not rerun, an interrupted row
resumes from its checkpoint, so rerunning the command completes the table. At the end the
table (Acc. and mAcc. of each row on the test split) is written to ROOT/ablation.md and printed.
With `--seeds 0,1,2` each row is trained once per seed in ROOT/<row>/seed_<n> (see
`hsnet_jax.training.seeds`) and its cells read mean ± sample std, e.g. `86.12 ± 0.31`. With
`--folds K` each run of a row is a subject-independent fold protocol (ROOT/<row>/fold_<k>,
`hsnet_jax.training.folds`) and a cell reads the mean over its folds.

The KTL rows need the ported VGGFace2 stem (`--config.ktl.stem_checkpoint=DIR`, written by
`convert/port_stem.py`). Without it the command stops at once, before training anything,
and says how to port it; `--skip_ktl` runs the four rows without KTL instead (the others
show "-" until they are run).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import jax
import ml_collections

from hsnet_jax.errors import HSNetError
from hsnet_jax.models import pretrained
from hsnet_jax.runtime import cli, runlock
from hsnet_jax.training import folds, seeds

PORT_HINT = ("port it with `python convert/port_stem.py --pretrained vggface2 --output weights/vggface2_stem` "
             "(or `--weights 20180402-114759-vggface2.pt` offline) and pass "
             "--config.ktl.stem_checkpoint=weights/vggface2_stem")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of Table 6."""

    dib: bool
    fgal: bool
    ktl: bool

    @property
    def name(self) -> str:
        parts = [n for n, on in (("dib", self.dib), ("fgal", self.fgal), ("ktl", self.ktl)) if on]
        return "_".join(parts) or "baseline"


# In the paper's order: the baseline, one component, two, all three.
ROWS = tuple(Row(*switches) for switches in (
    (False, False, False), (True, False, False), (False, True, False), (False, False, True),
    (True, True, False), (True, False, True), (False, True, True), (True, True, True)))


def row_config(config: ml_collections.ConfigDict, row: Row) -> ml_collections.ConfigDict:
    """`config` with the row's switches; KTL on = the config's stem checkpoint, off = "" (trained stem)."""
    out = ml_collections.ConfigDict(config.to_dict())
    out.model.use_dib = row.dib
    out.model.use_fgal = row.fgal
    out.ktl.stem_checkpoint = config.ktl.stem_checkpoint if row.ktl else ""
    return out


def metrics_path(root: str, row: Row) -> str:
    """A single run's test report of the row (the file that marks it finished)."""
    return seeds.report_path(os.path.join(root, row.name))


def row_cells(root: str, row: Row, seed_list: Sequence[int] | None = None) -> tuple[str, str] | None:
    """(Acc., mAcc.) of a finished row in percent: "86.12" from its one run, or "86.12 ± 0.31"
    over several seeds; None while unfinished."""
    if seed_list and len(seed_list) > 1:
        summary = seeds.summarize(os.path.join(root, row.name), seed_list)
        return None if summary is None else tuple(seeds.format_spread(summary[k]) for k in seeds.METRICS)
    result = seeds.run_result(os.path.join(root, row.name))
    return None if result is None else tuple(f"{100 * result[k]:.2f}" for k in seeds.METRICS)


def run_ablation(config: ml_collections.ConfigDict, root: str, skip_ktl: bool = False,
                 seed_list: Sequence[int] | None = None, fold_spec: int | str | None = None) -> str:
    """Trains and evaluates every row not finished yet (with several seeds: every unfinished
    seed of it, in ROOT/<row>/seed_<n>); returns the markdown table, also written to
    ROOT/ablation.md. Raises `cli.Stopped` when SIGTERM / Ctrl-C stopped a row (it saved;
    rerun). ROOT is held like a trainer's workdir (`hsnet_jax.runtime.runlock`). `fold_spec`:
    each run is that fold protocol (`folds.run_folds`)."""
    root = os.path.abspath(root)
    if not skip_ktl:
        if not config.ktl.stem_checkpoint:
            raise HSNetError(f"the KTL rows of Table 6 need the ported VGGFace2 stem: {PORT_HINT}; "
                             "or pass --skip_ktl to run only the rows without KTL")
        pretrained.load_stem_variables(config.ktl.stem_checkpoint)  # a bad stem fails now, not after 4 rows
    with runlock.hold(root, what="ablation"):
        return _run_rows(config, root, skip_ktl, seed_list, fold_spec)


def _run_rows(config: ml_collections.ConfigDict, root: str, skip_ktl: bool,
              seed_list: Sequence[int] | None, fold_spec: int | str | None) -> str:
    train_fn = folds.trainer(fold_spec)
    several = bool(seed_list) and len(seed_list) > 1
    if seed_list and not several:
        config = ml_collections.ConfigDict(config.to_dict())
        config.seed = seed_list[0]
    rows = [row for row in ROWS if not (skip_ktl and row.ktl)]
    for i, row in enumerate(rows, 1):
        workdir = os.path.join(root, row.name)
        finished = row_cells(root, row, seed_list) is not None
        state = f"finished, kept ({workdir})" if finished else f"training in {workdir}"
        cli.say(f"[{i}/{len(rows)}] {row.name}: {state}")
        if finished and not several:
            continue
        try:
            if several:  # skips its finished seeds; (re)writes the row's seeds.json
                seeds.run_seeds(row_config(config, row), workdir, seed_list, train_fn)
            else:
                train_fn(row_config(config, row), workdir)
        except cli.Stopped as e:
            cli.say(f"stopped by {e} during row {row.name}; rerun the same command to go on")
            raise
    table = ablation_table(root, config.dataset, seed_list)
    if jax.process_index() == 0:
        with open(os.path.join(root, "ablation.md"), "w") as f:
            f.write(table)
    return table


def ablation_table(root: str, dataset: str, seed_list: Sequence[int] | None = None) -> str:
    """Table 6 as markdown from the rows' test reports; a row without one shows "-"."""
    mark = {True: "✓", False: "×"}
    over = (f", mean ± sample std over seeds {','.join(map(str, seed_list))}"
            if seed_list and len(seed_list) > 1 else "")
    lines = [f"Ablation on {dataset} (test split{over}), run directories under {root}", "",
             "| DIB | FGAL | KTL | Acc. (%) | mAcc. (%) |", "|:---:|:---:|:---:|---:|---:|"]
    for row in ROWS:
        acc, macc = row_cells(root, row, seed_list) or ("-", "-")
        lines.append(f"| {mark[row.dib]} | {mark[row.fgal]} | {mark[row.ktl]} | {acc} | {macc} |")
    return "\n".join(lines) + "\n"

