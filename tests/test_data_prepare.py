"""The prepare command: a table on success; one `error:` line, no traceback, exit 1 on bad input."""

import os
import subprocess
import sys

import pytest

import data_trees
from hsnet_jax.data import load_split
from hsnet_jax.data.errors import DatasetNotPreparedError, UnknownDatasetError
from hsnet_jax.data.registry import default_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hsnet_jax.prepare", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def test_cli_prints_the_table(tmp_path):
    data_trees.image_folder(str(tmp_path / "pets"))
    result = run("--dataset", "image_folder", "--manual_dir", str(tmp_path / "pets"), "--data_dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    assert lines[header].split() == ["class", "train", "test"]
    assert lines[header + 1].split() == ["cat", "3", "1"] and lines[header + 3].split() == ["total", "5", "3"]
    assert "skipped (undecodable): 0" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--dataset", "rafd/sideways"], "dataset 'rafd' has no config 'sideways'"),
    (["--dataset", "raf_db", "--manual_dir", "/nonexistent/raf"], "/nonexistent/raf is missing or empty"),
])
def test_cli_bad_input_is_one_line_without_traceback(tmp_path, args, message):
    result = run(*args, "--data_dir", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0]


def test_cli_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    result = run("--dataset", "synthetic/small", "--data_dir", str(tmp_path / "file"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(line.startswith("error: ") and "file" in line for line in result.stderr.splitlines())


def test_cli_corrupt_image_without_traceback(tmp_path):
    tree = data_trees.raf_db(str(tmp_path / "r"), 1, 1)
    with open(os.path.join(tree["image_dir"], "test_00001_aligned.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff")
    result = run("--dataset", "raf_db", "--manual_dir", str(tmp_path / "r"), "--data_dir", str(tmp_path / "d"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: 1 image(s) cannot be decoded" in result.stderr and "test_00001_aligned.jpg" in result.stderr


def test_load_errors(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotPreparedError, match=r"--dataset kdef/subject_disjoint --manual_dir PATH_TO_DOWNLOAD"):
        load_split("kdef/subject_disjoint", "train", str(tmp_path))
    with pytest.raises(UnknownDatasetError):
        load_split("nope", "train", str(tmp_path))
    monkeypatch.setenv("HSNET_DATA_DIR", str(tmp_path / "env"))
    assert default_data_dir() == str(tmp_path / "env")
    monkeypatch.delenv("HSNET_DATA_DIR")
    assert default_data_dir() == os.path.join(os.path.expanduser("~"), "hsnet_data")
