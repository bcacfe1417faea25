"""Runs that survive people and machines, end to end on the training CLI: Ctrl-C, a second
launch on the same workdir, SIGKILL at random moments, damaged checkpoints, a full disk.
Each interrupted run is finished by rerunning the same command and must end bit-identical to
an uninterrupted one. Runs: 48 training images, 75 px, 2 epochs of 6 steps."""

import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from hsnet_jax.runtime import checkpoint
from train_runs import Trainer, assert_same_run, run
from train_runs import command as train_command

pytestmark = pytest.mark.slow


def _command(workdir, data_dir, *extra):
    return train_command(workdir, data_dir, "--config.num_epochs=2", *extra)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env, data_dir):
    workdir = tmp_path_factory.mktemp("reference")
    result = run(_command(workdir, data_dir), env)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(workdir)


def _finish_and_compare(workdir, data_dir, env, reference):
    result = run(_command(workdir, data_dir), env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert_same_run(workdir, reference)
    return result.stderr


def test_ctrl_c_saves_and_a_second_launch_on_the_workdir_is_refused(reference, tmp_path, env, data_dir):
    first = Trainer(_command(tmp_path, data_dir), env)
    first.wait_for("data placement: ")  # printed while the run holds its lock, before any step
    second = run(_command(tmp_path, data_dir), env)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert f"error: {tmp_path} is in use by another training run (pid {first.proc.pid} on " in second.stderr
    # The first progress line of epoch 2 comes after its first steps: Ctrl-C lands inside the epoch.
    first.wait_for("epoch 2/2: ")
    first.proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    first.proc.send_signal(signal.SIGINT)  # impatient: ignored until the checkpoint is written
    code, err = first.finish()
    assert code == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert "Ctrl-C: saved epoch 2 step" in err and "rerun the same command to resume" in err
    assert not os.path.exists(os.path.join(tmp_path, "run.lock"))
    assert checkpoint.read_meta(tmp_path, "latest")["step_in_epoch"] >= 1
    err = _finish_and_compare(tmp_path, data_dir, env, reference)
    assert "resuming" in err and "stale lock" not in err


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(reference, tmp_path, env, data_dir):
    """Seeded kills at a random time after a line that opens a phase: while the epoch-1
    checkpoint is written (it starts just before the epoch line), inside a step of epoch 2,
    and in epoch 2's validation; each rerun resumes (taking over the stale lock)."""
    rng = random.Random(9)
    moments = [("epoch 1: train loss", 1.5), ("epoch 2/2: 33%", 2.0), ("epoch 2/2: 100%", 1.0)]
    for marker, spread in moments:
        trainer = Trainer(_command(tmp_path, data_dir), env)
        trainer.wait_for(marker)
        time.sleep(rng.uniform(0.0, spread))
        trainer.proc.kill()
        code, err = trainer.finish()
        assert code == -signal.SIGKILL, err[-3000:]
        assert "Traceback" not in err
    err = _finish_and_compare(tmp_path, data_dir, env, reference)
    assert "taking over the stale lock" in err


def _truncate_arrays(workdir, step):
    files = glob.glob(os.path.join(workdir, "checkpoints", "latest", str(step), "**", "d", "*"), recursive=True)
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.truncate(16)


def test_a_damaged_checkpoint_is_named_moved_aside_and_the_older_one_resumed(reference, tmp_path, env, data_dir):
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    latest = checkpoint.open_manager(workdir, "latest", read_only=True).all_steps()
    assert len(latest) == 2
    _truncate_arrays(workdir, latest[-1])
    evaluate = run([sys.executable, "-m", "hsnet_jax.evaluate", "--workdir", workdir, "--which", "latest"], env)
    assert evaluate.returncode == 1 and evaluate.stderr.count("\n") == 1, evaluate.stderr[-3000:]
    assert f"error: checkpoint {workdir}/checkpoints/latest/{latest[-1]} cannot be read" in evaluate.stderr

    err = _finish_and_compare(workdir, data_dir, env, reference)
    assert f"warning: checkpoint {workdir}/checkpoints/latest/{latest[-1]} cannot be read" in err
    assert "resuming" in err and "at epoch 2, step 0" in err
    assert len(glob.glob(os.path.join(workdir, "checkpoints", "damaged", f"latest-{latest[-1]}-*"))) == 1

    for step in latest:  # now none is intact
        _truncate_arrays(workdir, step)
    result = run(_command(workdir, data_dir), env)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "Event loop" not in result.stderr, \
        result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: no intact checkpoint left in {workdir}")


def test_a_full_disk_during_a_save_keeps_the_last_checkpoint(reference, tmp_path, env, data_dir):
    """A real full disk: a tmpfs with room for the first epoch's checkpoints, not the second's."""
    mount = tmp_path / "disk"
    mount.mkdir()
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(reference, "**"), recursive=True)
               if os.path.isfile(p) and "/latest/" not in p)
    first = checkpoint.open_manager(reference, "latest", read_only=True).all_steps()[0]
    # The free-space check counts the arrays' bytes x SPACE_MARGIN (172 MiB here), more than
    # the 135 MiB they take on disk: 1.6 x the on-disk size lets epoch 1 save, not epoch 2.
    size += 1.6 * sum(
        os.path.getsize(p) for p in glob.glob(os.path.join(reference, "checkpoints", "latest", str(first), "**"),
                                              recursive=True) if os.path.isfile(p))
    size = int(size) + (16 << 20)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        workdir = str(mount / "run")
        result = run(_command(workdir, data_dir), env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: no space left for checkpoint 12 in {workdir}/checkpoints/latest"), last
        assert checkpoint.open_manager(workdir, "latest", read_only=True).all_steps() == [first]
        moved = str(tmp_path / "run")
        shutil.copytree(workdir, moved)  # "free some space": the run goes on elsewhere
    finally:
        subprocess.run(["umount", str(mount)])
    err = _finish_and_compare(moved, data_dir, env, reference)
    assert "resuming" in err and "at epoch 2, step 0" in err
