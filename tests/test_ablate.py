"""`hsnet_jax.ablate`: Table 6's rows, the skipping of finished rows, the KTL stem rule, and one
real row (DIB + FGAL + KTL) trained end to end on the generated set with a stem ported from a
random facenet-pytorch network by convert/port_stem.py."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from hsnet_jax.training import ablation
from hsnet_jax.runtime import checkpoint
from hsnet_jax.config import base_config
from hsnet_jax.errors import HSNetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(data_dir: str, stem_checkpoint: str = ""):
    """Seconds per row on a CPU: 75 px, two steps of 8, one epoch, the small generated set."""
    c = base_config("synthetic/small")
    c.data_dir = data_dir
    c.image_size = 75
    c.batch_size = 8
    c.num_epochs = 1
    c.steps_per_dispatch = 1  # no lax.scan: XLA:CPU runs scanned steps several times slower
    c.max_train_examples = 16
    c.max_eval_examples = 16
    c.eval_batch_size = 70
    c.ktl.stem_checkpoint = stem_checkpoint
    return c


def finish(root: str, row: ablation.Row, accuracy: float, mean_accuracy: float) -> None:
    """Writes a row's test report, as a finished run leaves it."""
    path = ablation.metrics_path(root, row)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump({"accuracy": accuracy, "mean_accuracy": mean_accuracy}, f)


def test_rows_are_table_6():
    assert [r.name for r in ablation.ROWS] == ["baseline", "dib", "fgal", "ktl", "dib_fgal", "dib_ktl",
                                             "fgal_ktl", "dib_fgal_ktl"]
    config = tiny_config("/data", stem_checkpoint="/weights/vggface2")
    for row in ablation.ROWS:
        c = ablation.row_config(config, row)
        assert (c.model.use_dib, c.model.use_fgal) == (row.dib, row.fgal)
        assert c.ktl.stem_checkpoint == ("/weights/vggface2" if row.ktl else "")
        assert c.dataset == "synthetic/small" and c.image_size == 75
    assert config.model.use_dib and config.model.use_fgal  # the given config is not changed


def test_ktl_rows_without_a_stem_fail_before_training(tmp_path):
    with pytest.raises(HSNetError, match="convert/port_stem.py .* --skip_ktl"):
        ablation.run_ablation(tiny_config(str(tmp_path / "data")), str(tmp_path / "ablation"))
    assert not os.path.exists(tmp_path / "ablation")
    with pytest.raises(HSNetError, match="no ported stem"):
        ablation.run_ablation(tiny_config(str(tmp_path / "data"), str(tmp_path / "nowhere")),
                            str(tmp_path / "ablation"))


def test_skip_ktl_with_every_other_row_finished_trains_nothing(tmp_path):
    root = str(tmp_path / "ablation")
    no_ktl = [r for r in ablation.ROWS if not r.ktl]
    for i, row in enumerate(no_ktl):
        finish(root, row, 0.5 + i / 100, 0.4 + i / 100)
    table = ablation.run_ablation(tiny_config(str(tmp_path / "data")), root, skip_ktl=True)
    with open(os.path.join(root, "ablation.md")) as f:
        assert f.read() == table
    lines = table.splitlines()
    assert lines[2] == "| DIB | FGAL | KTL | Acc. (%) | mAcc. (%) |"
    assert lines[4:] == [
        "| × | × | × | 50.00 | 40.00 |", "| ✓ | × | × | 51.00 | 41.00 |", "| × | ✓ | × | 52.00 | 42.00 |",
        "| × | × | ✓ | - | - |", "| ✓ | ✓ | × | 53.00 | 43.00 |", "| ✓ | × | ✓ | - | - |",
        "| × | ✓ | ✓ | - | - |", "| ✓ | ✓ | ✓ | - | - |"]
    assert sorted(os.listdir(root)) == sorted([r.name for r in no_ktl] + ["ablation.md"])


@pytest.fixture
def ported_stem(tmp_path):
    """convert/port_stem.py's output for a random facenet-pytorch InceptionResnetV1."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    from convert import port_stem

    torch.manual_seed(0)
    weights = str(tmp_path / "facenet.pt")
    torch.save(InceptionResnetV1().state_dict(), weights)
    port_stem.port(weights, str(tmp_path / "ported"))
    return str(tmp_path / "ported")


@pytest.mark.slow
def test_cli_runs_the_remaining_row_and_skips_finished_ones(tmp_path, ported_stem):
    from hsnet_jax.models.pretrained import load_stem_variables

    root = str(tmp_path / "ablation")
    for i, row in enumerate(ablation.ROWS[:-1]):
        finish(root, row, 0.5 + i / 100, 0.4 + i / 100)
    c = tiny_config(str(tmp_path / "data"), ported_stem)
    overrides = [f"--config.{k}={v}" for k, v in (
        ("dataset", c.dataset), ("data_dir", c.data_dir), ("image_size", 75), ("batch_size", 8),
        ("num_epochs", 1), ("steps_per_dispatch", 1), ("max_train_examples", 16),
        ("max_eval_examples", 16), ("eval_batch_size", 70), ("ktl.stem_checkpoint", ported_stem))]
    command = [sys.executable, "-m", "hsnet_jax.ablate", "--config", os.path.join(ROOT, "configs", "raf.py"),
               "--workdir", root] + overrides
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[1/8] baseline: finished, kept" in result.stderr
    assert "[8/8] dib_fgal_ktl: training in" in result.stderr

    # The full HSNet row really ran, with KTL: its config, its report, its frozen ported stem.
    workdir = os.path.join(root, "dib_fgal_ktl")
    config = checkpoint.load_run_config(workdir)
    assert (config.model.use_dib, config.model.use_fgal, config.ktl.stem_checkpoint) == (True, True, ported_stem)
    with open(ablation.metrics_path(root, ablation.ROWS[-1])) as f:
        report = json.load(f)
    assert report["num_examples"] == 140 and 0.0 <= report["accuracy"] <= 1.0
    stem = load_stem_variables(ported_stem)
    trained = checkpoint.restore_variables(workdir, "best")
    for collection in ("params", "batch_stats"):
        for a, b in zip(jax.tree.leaves(stem[collection]), jax.tree.leaves(trained[collection]["stem"])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    last = f"| ✓ | ✓ | ✓ | {100 * report['accuracy']:.2f} | {100 * report['mean_accuracy']:.2f} |"
    with open(os.path.join(root, "ablation.md")) as f:
        table = f.read()
    assert table.splitlines()[4] == "| × | × | × | 50.00 | 40.00 |"
    assert table.splitlines()[-1] == last
    assert table in result.stdout

    # Everything finished now: a rerun trains nothing and leaves the reports alone.
    before = os.path.getmtime(ablation.metrics_path(root, ablation.ROWS[-1]))
    assert ablation.run_ablation(c, root) == table
    assert os.path.getmtime(ablation.metrics_path(root, ablation.ROWS[-1])) == before


@pytest.mark.parametrize("args, status, message", [
    ([], 1, "error: the KTL rows of Table 6 need the ported VGGFace2 stem"),
    (["--config.batchsize=8"], 2, "error: 'batchsize' Did you mean \"batch_size\""),
])
def test_cli_errors_are_one_line(tmp_path, args, status, message):
    result = subprocess.run([sys.executable, "-m", "hsnet_jax.ablate", "--config",
                             os.path.join(ROOT, "configs", "raf.py"), "--workdir", str(tmp_path)] + args,
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == status
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
