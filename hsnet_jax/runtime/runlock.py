"""One run per directory: WORKDIR/run.lock, held by a trainer (or `ablate`, on its root) for
its lifetime, so a second launch on the same workdir stops at once instead of training on
top of the first.

The lock is a file created with O_EXCL (atomic on local file systems and on NFS v3+), holding
JSON {host, pid, started, ...}. A heartbeat thread touches it every HEARTBEAT_S seconds. It is
stale, and is taken over with a warning, when
- its host is this host and its pid is not alive (or is a newer process with the same pid:
  the process start time is compared), e.g. after SIGKILL or a reboot;
- its host is another host and it was not touched for STALE_AFTER_S seconds (that host died
  or lost the file system).
A take-over renames the stale file first (atomic: of two processes taking over, one wins).
Multi-process runs hold it once, on process 0 (see `hold`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Iterator

from hsnet_jax.errors import HSNetError

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


def _start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot (/proc/PID/stat field 22), Linux only."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return start is None or _start_ticks(pid) in (None, start)


def describe(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {started}"


class WorkdirLock:
    """The lock of one directory; `acquire` raises HSNetError naming a live holder."""

    def __init__(self, directory: str, what: str = "training run"):
        self.directory = os.path.abspath(directory)
        self.path = os.path.join(self.directory, LOCK_NAME)
        self.what = what
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                   "start_ticks": _start_ticks(os.getpid()), "command": " ".join(sys.argv)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.me, f)
        return True

    def _holder(self) -> dict[str, Any] | None:
        try:
            with open(self.path) as f:
                holder = json.load(f)
            holder["mtime"] = os.stat(self.path).st_mtime
            return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # being written, or half-written by a process killed then
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return None
            return {"host": "?", "pid": None, "started": mtime, "mtime": mtime}

    def stale_reason(self, holder: dict[str, Any]) -> str | None:
        if holder.get("host") == self.me["host"] and holder.get("pid") is not None:
            if not _alive(int(holder["pid"]), holder.get("start_ticks")):
                return f"process {holder['pid']} no longer exists"
            return None
        age = time.time() - holder.get("mtime", 0.0)
        if age > STALE_AFTER_S:
            return f"not refreshed for {age:.0f} s (more than {STALE_AFTER_S:.0f} s)"
        return None

    def acquire(self) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
            for _ in range(3):
                if self._create():
                    break
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile
                reason = self.stale_reason(holder)
                if reason is None:
                    raise HSNetError(f"{self.directory} is in use by another {self.what} ({describe(holder)}; "
                                     f"lock file {self.path}); wait for it to end or use another directory")
                print(f"warning: taking over the stale lock {self.path} of {describe(holder)}: {reason}",
                      file=sys.stderr, flush=True)
                with contextlib.suppress(FileNotFoundError):  # another taker may have won the rename
                    os.rename(self.path, f"{self.path}.stale-{os.getpid()}")
                    os.remove(f"{self.path}.stale-{os.getpid()}")
            else:
                raise HSNetError(f"could not take the lock {self.path} (other processes keep taking it)")
        except OSError as e:
            raise HSNetError(f"cannot use {self.directory} as the {self.what}'s directory: "
                             f"{e.strerror or e}") from None
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="run.lock heartbeat")
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        holder = self._holder()
        if holder and holder.get("pid") == self.me["pid"] and holder.get("host") == self.me["host"]:
            with contextlib.suppress(OSError):
                os.remove(self.path)


@contextlib.contextmanager
def hold(directory: str, what: str = "training run") -> Iterator[None]:
    """Holds `directory`'s lock for the block. With several processes, process 0 takes it and
    tells the others whether it could (they stop with the same one-line error otherwise)."""
    import jax
    import numpy as np

    lock = WorkdirLock(directory, what) if jax.process_index() == 0 else None
    error = ""
    if lock is not None:
        try:
            lock.acquire()
        except HSNetError as e:
            error = str(e)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        failed = bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(error))))
        if failed and not error:
            raise HSNetError(f"process 0 could not take the lock of {os.path.abspath(directory)} (it says why)")
    if error:
        raise HSNetError(error)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
