"""Several seeds: the spread's arithmetic, the skipping of finished seeds, the ablation cells,
and `python -m hsnet_jax.train --seeds 0,1` end to end on the generated set."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from hsnet_jax.training import ablation
from hsnet_jax.training import seeds
from hsnet_jax.config import base_config
from hsnet_jax.errors import HSNetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def finish(workdir: str, accuracy: float, mean_accuracy: float) -> None:
    """Writes a run's test report, as a finished run leaves it."""
    os.makedirs(os.path.join(workdir, "eval"))
    with open(seeds.report_path(workdir), "w") as f:
        json.dump({"accuracy": accuracy, "mean_accuracy": mean_accuracy}, f)


def test_mean_and_sample_std():
    values = [0.8612, 0.8650, 0.8590]
    stats = seeds.mean_std(values)
    assert stats["n"] == 3
    assert stats["mean"] == pytest.approx(statistics.mean(values), abs=1e-15)
    assert stats["std"] == pytest.approx(statistics.stdev(values), abs=1e-15)  # ddof 1, not pstdev
    assert seeds.format_spread({"mean": 0.86123, "std": 0.00314, "n": 3}) == "86.12 ± 0.31"
    assert seeds.mean_std([0.5])["std"] == 0.0


@pytest.mark.parametrize("text, message", [
    ("0,x", "comma-separated integers"), ("1,1", "twice"), ("-1,2", "non-negative")])
def test_bad_seed_lists_are_refused(text, message):
    with pytest.raises(HSNetError, match=message):
        seeds.parse_seeds(text)
    assert seeds.parse_seeds("2,0,7") == [2, 0, 7]


def test_finished_seeds_are_summarised_not_rerun(tmp_path):
    root = str(tmp_path / "run")
    for seed, acc in ((0, 0.50), (1, 0.60), (2, 0.55)):
        finish(seeds.seed_workdir(root, seed), acc, acc - 0.1)
    def must_not_train(config, workdir):  # a finished seed is never handed to the trainer
        raise AssertionError(f"seed {config.seed} was trained again in {workdir}")

    summary = seeds.run_seeds(base_config("synthetic/small"), root, [0, 1, 2], must_not_train)
    with open(os.path.join(root, "seeds.json")) as f:
        assert json.load(f) == summary
    assert summary["per_seed"]["1"] == {"accuracy": 0.60, "mean_accuracy": 0.50}
    assert summary["accuracy"] == pytest.approx({"mean": 0.55, "std": 0.05, "n": 3})
    assert seeds.summary_line(summary) == "Acc. 55.00 ± 5.00, mAcc. 45.00 ± 5.00 (3 seeds)"
    assert sorted(os.listdir(seeds.seed_workdir(root, 0))) == ["eval"]
    assert seeds.summarize(root, [0, 1, 2, 3]) is None  # seed 3 unfinished


def test_ablation_cells_read_mean_and_spread(tmp_path):
    from test_ablate import tiny_config

    root = str(tmp_path / "ablation")
    for row in ablation.ROWS:
        if not row.ktl:
            for seed, acc in ((0, 0.8612 - 0.0031), (1, 0.8612), (2, 0.8612 + 0.0031)):
                finish(seeds.seed_workdir(os.path.join(root, row.name), seed), acc, acc - 0.01)
    table = ablation.run_ablation(tiny_config(str(tmp_path / "data")), root, skip_ktl=True, seed_list=[0, 1, 2])
    lines = table.splitlines()
    assert "mean ± sample std over seeds 0,1,2" in lines[0]
    assert lines[4] == "| × | × | × | 86.12 ± 0.31 | 85.12 ± 0.31 |"
    assert lines[7] == "| × | × | ✓ | - | - |"
    assert sorted(os.listdir(os.path.join(root, "dib_fgal"))) == ["seed_0", "seed_1", "seed_2", "seeds.json"]


def test_fold_protocols_and_best_epoch_on_test_are_summarised(tmp_path):
    """A seed (or an ablation row) run as folds is finished by its folds.json and counts with
    its fold means; the best-epoch-on-test numbers are spread beside the validation-selected."""
    root = str(tmp_path / "run")
    for seed, acc in ((0, 0.50), (1, 0.60)):
        os.makedirs(seeds.seed_workdir(root, seed))
        spread = lambda v: {"mean": v, "std": 0.01, "n": 3}  # noqa: E731
        with open(os.path.join(seeds.seed_workdir(root, seed), seeds.FOLDS_FILE), "w") as f:
            json.dump({"accuracy": spread(acc), "mean_accuracy": spread(acc - 0.1),
                       seeds.ON_TEST: {"accuracy": spread(acc + 0.05), "mean_accuracy": spread(acc)}}, f)
    summary = seeds.run_seeds(base_config("synthetic/small"), root, [0, 1], None)  # nothing to train
    assert summary["per_seed"]["1"] == {"accuracy": 0.60, "mean_accuracy": 0.50,
                                        seeds.ON_TEST: {"accuracy": 0.65, "mean_accuracy": 0.60}}
    assert summary[seeds.ON_TEST]["accuracy"] == pytest.approx({"mean": 0.60, "std": 0.0707107, "n": 2})
    assert seeds.summary_line(summary) == ("Acc. 55.00 ± 7.07, mAcc. 45.00 ± 7.07 (2 seeds) validation-selected; "
                                           "best epoch on test (as DAN/POSTER report): Acc. 60.00 ± 7.07, "
                                           "mAcc. 55.00 ± 7.07")
    assert ablation.row_cells(root, ablation.Row(False, False, False)) is None
    os.rename(seeds.seed_workdir(root, 0), os.path.join(root, "baseline"))
    assert ablation.row_cells(root, ablation.Row(False, False, False)) == ("50.00", "40.00")


@pytest.mark.slow
def test_cli_trains_each_seed_once_and_prints_the_spread(tmp_path):
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "hsnet_jax.train", "--config", "configs/demo.py", "--workdir", str(workdir),
               "--seeds", "0,1", "--config.dataset=synthetic/small", f"--config.data_dir={tmp_path / 'data'}",
               "--config.max_train_examples=16", "--config.max_eval_examples=16", "--config.batch_size=8",
               "--config.num_epochs=1", "--config.eval_batch_size=70"]
    # One compilation cache for both seeds and the rerun: only what differs is compiled twice.
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "xla_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(workdir / "seeds.json") as f:
        summary = json.load(f)
    reports = []
    for seed in (0, 1):
        with open(seeds.report_path(str(workdir / f"seed_{seed}"))) as f:
            reports.append(json.load(f))
        with open(workdir / f"seed_{seed}" / "config.json") as f:
            assert json.load(f)["seed"] == seed
    assert summary["per_seed"]["0"]["accuracy"] == reports[0]["accuracy"]
    assert summary["accuracy"]["std"] == pytest.approx(
        statistics.stdev([r["accuracy"] for r in reports]), abs=1e-12)
    assert seeds.summary_line(summary) in result.stderr
    assert not (workdir / "checkpoints").exists()  # the seeds' runs are apart, not in the root

    # Both finished: a rerun trains nothing and prints the same line.
    before = os.path.getmtime(seeds.report_path(str(workdir / "seed_1")))
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "[seed 1, 2/2] finished, kept" in again.stderr
    assert seeds.summary_line(summary) in again.stderr
    assert os.path.getmtime(seeds.report_path(str(workdir / "seed_1"))) == before
