"""A process of a two-process cluster that starts `jax.distributed` (and so the watchdog) and
then either dies at once (process 1, SIGKILL, before its watchdog's first beat) or stays busy
(process 0), for tests/test_distributed.py::test_a_process_lost_before_its_first_heartbeat_is_named_too:
process 0's watchdog must end it with one line naming process 1.

Usage: python -m tests.programs.early_death
(the cluster comes from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID).

Its own interpreter: each process of the cluster is one, and one of them is killed.
"""

import os
import signal
import sys
import time

import ml_collections

from hsnet_jax.runtime import distributed


def main() -> None:
    distributed.initialize_distributed(ml_collections.ConfigDict({"distributed": "auto"}))
    import jax

    print("initialized", file=sys.stderr, flush=True)
    if jax.process_index() == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # before its watchdog's first beat
    time.sleep(300)  # busy elsewhere (compiling, reading data): only the watchdog can notice


if __name__ == "__main__":
    main(*sys.argv[1:])
