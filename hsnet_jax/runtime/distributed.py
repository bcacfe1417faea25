"""Several processes (hosts): starting `jax.distributed`, and ending cleanly when one is lost.

When a process of a multi-process run dies (SIGKILL, a crashed host) the others would, left
alone, hang in their next collective or barrier until JAX's coordination service misses the
dead process's heartbeats (`HEARTBEAT_TIMEOUT_S`) and aborts every survivor with a fatal-error
stack dump. Instead each process runs a `_Watchdog` thread: it publishes a beat in the
coordination service's key-value store every `BEAT_S` seconds and reads the others'; a process
whose beat has not moved for `LOST_AFTER_S` seconds (well before JAX's heartbeat timeout), or
a coordinator that no longer answers, ends this process with one line naming the lost one
(`os._exit`, past the shutdown barrier nobody would reach). A collective that fails first
(Gloo / NCCL report the closed connection) ends it the same way (`exit_if_process_lost`).
The checkpoints are intact (saves are atomic), so rerunning every process resumes.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

import jax
import ml_collections

# Seconds without a heartbeat after which JAX's coordination service declares a process dead
# and aborts the others (a fatal-error dump, not our line): JAX's default, so the watchdog
# (LOST_AFTER_S) or the failed collective always comes first.
HEARTBEAT_TIMEOUT_S = 100
BEAT_S = 2.0  # how often each process publishes its beat
LOST_AFTER_S = 30.0  # a beat unchanged this long: the process is gone (a busy one still beats)
_BEATS = "hsnet_jax/beat/"
_ending = threading.Lock()  # the first thread to report a lost process prints and exits; others return


def cluster_detected() -> bool:
    """A multi-process job that `jax.distributed.initialize()` can configure itself from."""
    env = os.environ
    return bool(env.get("JAX_COORDINATOR_ADDRESS") or int(env.get("SLURM_NTASKS", "1")) > 1
                or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
                or "," in env.get("TPU_WORKER_HOSTNAMES", ""))


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """`jax.distributed.initialize()` when the config asks ("yes") or, with "auto", when a
    cluster is detected. JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID set the
    coordinator by hand; otherwise JAX's SLURM, Open MPI and Cloud TPU detection applies.
    Starts the watchdog of a multi-process run."""
    if config.distributed == "no" or (config.distributed == "auto" and not cluster_detected()):
        return
    env = os.environ
    kwargs = {k: int(env[v]) for k, v in (("num_processes", "JAX_NUM_PROCESSES"),
                                          ("process_id", "JAX_PROCESS_ID")) if v in env}
    jax.distributed.initialize(heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S, **kwargs)
    if jax.process_count() > 1:
        if coordination_client() is None:
            print("warning: this jax has no coordination key-value store the watchdog can use: a lost process "
                  f"ends the others after JAX's {HEARTBEAT_TIMEOUT_S} s heartbeat timeout", file=sys.stderr)
            return
        watchdog = _Watchdog()
        # atexit runs last-registered first: the watchdog stops before JAX's own shutdown,
        # which ends the key-value store it reads.
        atexit.register(watchdog.stop)
        watchdog.start()


def coordination_client():
    """JAX's coordination-service client, or None where this jax lacks it or its key-value
    calls. The one place that reads JAX's private state (no public route exists): orbax-checkpoint
    reads it the same way (its multihost module), so it moves only with a matching orbax.
    tests/test_distributed.py fails by name when a jax release moves it."""
    try:
        from jax._src import distributed

        client = distributed.global_state.client
    except (ImportError, AttributeError):
        return None
    return client if all(hasattr(client, m) for m in ("key_value_set", "key_value_dir_get")) else None


def _end(me: int, who: str, reason: str) -> None:
    """One line naming the lost process, then exit 1 at once (no shutdown barrier). Only the
    first caller reports; a second (the watchdog and a failed collective at the same moment)
    returns at once, without waiting on anything, and the first one's exit ends it."""
    if not _ending.acquire(blocking=False):
        return
    try:
        # The leading newline ends a progress bar left mid-line, so the error stands on its own line.
        print(f"\nerror: process {me}: lost {who} of {jax.process_count()} ({reason}); the checkpoints are "
              "intact: rerun every process to resume", file=sys.stderr, flush=True)
        sys.stdout.flush()
    finally:
        os._exit(1)


class _Watchdog(threading.Thread):
    """Publishes this process's beat and ends the process when another's stops."""

    def __init__(self):
        super().__init__(name="hsnet_jax watchdog", daemon=True)
        self._stopped = threading.Event()
        self._writing = threading.Lock()  # so no beat follows the "done" of `stop`
        self._me, self._count = jax.process_index(), jax.process_count()

    def stop(self) -> None:
        """At exit: stop watching, and tell the others this process ended on purpose (they may
        still work a while, e.g. process 0 drawing plots, before the shutdown barrier)."""
        with self._writing:
            self._stopped.set()
            try:
                coordination_client().key_value_set(f"{_BEATS}{self._me}", "done", allow_overwrite=True)
            except Exception:  # the coordinator is gone already: nobody is left to tell
                pass

    def _beat(self, client, beat: int) -> None:
        with self._writing:
            if not self._stopped.is_set():
                client.key_value_set(f"{_BEATS}{self._me}", str(beat), allow_overwrite=True)

    def run(self) -> None:
        client, beat, start = coordination_client(), 0, time.monotonic()
        # key -> (value, when it last changed); every other process counts from now, so one
        # that dies before its first beat is lost after LOST_AFTER_S like any other
        seen = {f"{_BEATS}{p}": ("", start) for p in range(self._count) if p != self._me}
        while not self._stopped.wait(BEAT_S):
            beat += 1
            try:
                self._beat(client, beat)
                beats = dict(client.key_value_dir_get(_BEATS))
            except Exception as e:  # the coordination service (on process 0) is gone
                if self._stopped.is_set():
                    return
                if self._me != 0:
                    _end(self._me, "process 0 (the coordinator)", " ".join(str(e).split())[:200])
                continue
            now = time.monotonic()
            for key, value in beats.items():
                if seen.get(key, ("", 0.0))[0] != value:
                    seen[key] = (value, now)
            lost = [p for p in range(self._count) if p != self._me
                    and seen[f"{_BEATS}{p}"][0] != "done" and now - seen[f"{_BEATS}{p}"][1] > LOST_AFTER_S]
            if lost and not self._stopped.is_set():
                _end(self._me, "process " + ", ".join(map(str, lost)), f"no heartbeat for {LOST_AFTER_S:.0f} s")


def lost_processes() -> list[int] | None:
    """The processes the coordination service no longer sees (None when it cannot be asked:
    the coordinator itself is gone)."""
    client = coordination_client()
    if client is None:
        return None
    try:
        live = set(client.get_live_nodes(list(range(jax.process_count()))))
    except Exception:  # the coordinator (process 0) is unreachable
        return None
    return [p for p in range(jax.process_count()) if p not in live]


def exit_if_process_lost(error: BaseException) -> None:
    """In a multi-process run, a runtime error of JAX (a failed collective) means another
    process is gone: one line naming it, then exit 1 at once, without the shutdown barrier."""
    if jax.process_count() <= 1 or not isinstance(error, jax.errors.JaxRuntimeError):
        return
    lost, me = lost_processes(), jax.process_index()
    if lost:
        who = "process " + ", ".join(map(str, lost))
    elif jax.process_count() == 2:  # not yet declared dead, but there is only one other
        who = "process 0 (the coordinator)" if me else "process 1"
    elif lost is None and me != 0:
        who = "process 0 (the coordinator)"
    else:
        who = "another process"
    _end(me, who, " ".join(str(error).split())[:200])
