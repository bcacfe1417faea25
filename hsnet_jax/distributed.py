"""Several processes (hosts): starting `jax.distributed`, and ending cleanly when one is lost.

When a process of a multi-process run dies (SIGKILL, a crashed host) the others notice in
their next collective (Gloo / NCCL report a closed connection) or through JAX's coordination
service heartbeat. Left alone, they would then wait in JAX's shutdown barrier and end minutes
later in a fatal-error stack dump; `exit_if_process_lost` instead prints one line naming the
lost processes and leaves at once (`os._exit`, past the barrier nobody would reach). The
checkpoints are intact (saves are atomic), so rerunning every process resumes.
"""

from __future__ import annotations

import os
import sys

import jax
import ml_collections

# Seconds without a heartbeat after which the coordination service declares a process dead
# and aborts the others (a fatal-error dump, not our line): JAX's default, long enough for the
# failed collective, which comes first, to end a survivor with one line.
HEARTBEAT_TIMEOUT_S = 100


def cluster_detected() -> bool:
    """A multi-process job that `jax.distributed.initialize()` can configure itself from."""
    env = os.environ
    return bool(env.get("JAX_COORDINATOR_ADDRESS") or int(env.get("SLURM_NTASKS", "1")) > 1
                or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
                or "," in env.get("TPU_WORKER_HOSTNAMES", ""))


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """`jax.distributed.initialize()` when the config asks ("yes") or, with "auto", when a
    cluster is detected. JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID set the
    coordinator by hand; otherwise JAX's SLURM, Open MPI and Cloud TPU detection applies."""
    if config.distributed == "no" or (config.distributed == "auto" and not cluster_detected()):
        return
    env = os.environ
    kwargs = {k: int(env[v]) for k, v in (("num_processes", "JAX_NUM_PROCESSES"),
                                          ("process_id", "JAX_PROCESS_ID")) if v in env}
    jax.distributed.initialize(heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S, **kwargs)


def lost_processes() -> list[int] | None:
    """The processes the coordination service no longer sees (None when it cannot be asked:
    the coordinator itself is gone)."""
    from jax._src import distributed

    client = distributed.global_state.client
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
    lost = lost_processes()
    me = jax.process_index()
    if lost is None:
        who = "process 0 (the coordinator)" if me != 0 else "another process"
    elif lost:
        who = "process " + ", ".join(map(str, lost))
    else:
        who = "another process"
    reason = " ".join(str(error).split())[:200]
    print(f"error: process {me}: lost {who} of {jax.process_count()} ({reason}); the checkpoints are "
          "intact: rerun every process to resume", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)
