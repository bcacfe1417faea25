"""Subject-independent folds (`--folds`): the flag's values, the one-line error for a database
without subjects, and `python -m hsnet_jax.train --folds 3` end to end on a generated CK+ tree
(folds.json, the pooled confusion matrix, the best-epoch-on-test column, a rerun keeping every
finished fold)."""

import json
import os
import sys

import numpy as np
import pytest

import data_trees
import field_trees
from hsnet_jax.config import base_config
from hsnet_jax.data import prepare_dataset
from hsnet_jax.data.errors import NoSubjectsError
from hsnet_jax.errors import HSNetError
from hsnet_jax.training import folds, seeds
from train_runs import run


@pytest.mark.parametrize("text, message", [("1", "at least 2"), ("x", "whole number"), ("", "whole number")])
def test_bad_fold_counts_are_refused(text, message):
    with pytest.raises(HSNetError, match=message):
        folds.parse_folds(text)
    assert folds.parse_folds("10") == 10 and folds.parse_folds("LOSO") == "loso"


def test_a_database_without_subjects_is_a_one_line_error(tmp_path):
    data_dir = str(tmp_path / "data")
    data_trees.image_folder(str(tmp_path / "pets"))
    prepare_dataset("image_folder", data_dir=data_dir, manual_dir=str(tmp_path / "pets"))
    config = base_config("image_folder")
    config.data_dir = data_dir
    with pytest.raises(NoSubjectsError) as e:
        folds.run_folds(config, str(tmp_path / "run"), 3)
    assert "names no subject" in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_three_folds_end_to_end_on_ckplus(tmp_path, env):
    data_dir = str(tmp_path / "data")
    field_trees.ckplus(str(tmp_path / "CK+"))
    prepare_dataset("ckplus", data_dir=data_dir, manual_dir=str(tmp_path / "CK+"))
    workdir = tmp_path / "run"
    # host placement: every fold's step has the same input shapes, so it compiles once
    command = [sys.executable, "-m", "hsnet_jax.train", "--config", "configs/ckplus.py", "--workdir", str(workdir),
               f"--config.data_dir={data_dir}", "--config.image_size=75", "--config.batch_size=4",
               "--config.num_epochs=1", "--config.eval_batch_size=16", "--config.steps_per_dispatch=1",
               "--config.optimizer.learning_rate=0.001", "--config.data_placement=host",
               "--config.report_test_each_epoch=True", "--folds", "3"]
    result = run(command, env)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(workdir / "folds.json") as f:
        summary = json.load(f)
    assert summary["folds"] == 3 and [p["fold"] for p in summary["per_fold"]] == [0, 1, 2]
    tested = [s for p in summary["per_fold"] for s in p["test_subjects"]]
    assert sorted(tested) == list(field_trees.CK_SUBJECTS)  # every subject tested once
    assert summary["per_fold"][0]["test_subjects"] == ["S005", "S014", "S032", "S037"]  # sorted, round robin
    accuracies = [p["accuracy"] for p in summary["per_fold"]]
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert [p["num_test"] for p in summary["per_fold"]] == [12, 9, 9]
    pooled = np.asarray(summary["pooled"]["confusion_matrix"])
    assert pooled.sum() == 30 and pooled.trace() == pytest.approx(np.dot(accuracies, [12, 9, 9]))
    assert seeds.ON_TEST in summary and all(seeds.ON_TEST in p for p in summary["per_fold"])
    assert open(workdir / "folds_confusion_matrix.png", "rb").read(4) == b"\x89PNG"
    with open(workdir / "fold_1" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert all("test_accuracy" in r and sum(r["train_class_counts"]) % 4 == 0 for r in records)
    assert "(3 folds) validation-selected; best epoch on test (as DAN/POSTER report)" in result.stderr

    config = base_config("ckplus")
    config.data_dir = data_dir
    assert folds.run_folds(config, str(workdir), 3) == summary  # every fold finished: kept, not retrained
