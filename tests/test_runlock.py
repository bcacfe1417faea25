"""One run per directory: the lock refuses a live holder (this host: by pid; another host: by
heartbeat age), takes over a stale one with a warning, and is released on exit."""

import json
import os
import subprocess
import sys
import time

import pytest

from hsnet_jax.runtime import runlock
from hsnet_jax.errors import HSNetError


def _write_lock(directory, **holder):
    record = {"host": "thishost", "pid": 1, "started": time.time(), **holder}
    with open(os.path.join(directory, runlock.LOCK_NAME), "w") as f:
        json.dump(record, f)


def test_a_live_holder_is_named_and_the_lock_is_released(tmp_path):
    first = runlock.WorkdirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(HSNetError, match=rf"in use by another training run \(pid {os.getpid()} on "):
            runlock.WorkdirLock(tmp_path).acquire()
    finally:
        first.release()
    assert not os.path.exists(first.path)
    second = runlock.WorkdirLock(tmp_path)
    second.acquire()  # free again
    second.release()


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path, capsys):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now free
    lock = runlock.WorkdirLock(tmp_path)
    _write_lock(tmp_path, host=lock.me["host"], pid=proc.pid)
    lock.acquire()
    lock.release()
    err = capsys.readouterr().err
    assert f"taking over the stale lock {lock.path}" in err and f"process {proc.pid} no longer exists" in err


def test_a_reused_pid_does_not_keep_a_lock(tmp_path, capsys):
    lock = runlock.WorkdirLock(tmp_path)  # our own pid, but an older process start time
    _write_lock(tmp_path, host=lock.me["host"], pid=os.getpid(), start_ticks="1")
    lock.acquire()
    lock.release()
    assert "taking over the stale lock" in capsys.readouterr().err


def test_another_hosts_lock_holds_until_its_heartbeat_is_old(tmp_path, capsys):
    _write_lock(tmp_path, host="elsewhere", pid=os.getpid())
    with pytest.raises(HSNetError, match="in use by another training run .* on elsewhere"):
        runlock.WorkdirLock(tmp_path).acquire()
    old = time.time() - runlock.STALE_AFTER_S - 10
    os.utime(os.path.join(tmp_path, runlock.LOCK_NAME), (old, old))
    lock = runlock.WorkdirLock(tmp_path)
    lock.acquire()
    assert "not refreshed for" in capsys.readouterr().err
    lock.release()


def test_the_heartbeat_refreshes_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "HEARTBEAT_S", 0.05)
    lock = runlock.WorkdirLock(tmp_path)
    lock.acquire()
    old = time.time() - 1000
    os.utime(lock.path, (old, old))
    time.sleep(0.5)
    assert time.time() - os.stat(lock.path).st_mtime < 100
    lock.release()


def test_an_impossible_directory_is_one_line(tmp_path):
    with pytest.raises(HSNetError, match="cannot use /proc/hsnet_x as the training run's directory"):
        runlock.WorkdirLock("/proc/hsnet_x").acquire()
    (tmp_path / "file").write_text("")
    with pytest.raises(HSNetError, match=f"cannot use {tmp_path}/file/run as"):
        runlock.WorkdirLock(tmp_path / "file" / "run").acquire()
