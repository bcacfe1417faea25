"""Starts `jax.distributed` (a coordinator on 127.0.0.1, one process) and reports, as one JSON
line, what `hsnet_jax.runtime.distributed.coordination_client()` finds: whether there is a
client, which of the calls the watchdog and `lost_processes` use it lacks, whether a key set
reads back, and which nodes it calls live. For
tests/test_distributed.py::test_the_coordination_client_is_where_jax_keeps_it: that function
reads JAX's private state, which a jax release may move.

Usage: python -m tests.programs.coordination_client PORT [NUM_PROCESSES PROCESS_ID]
(process 0 prints the report).

Its own interpreter: `jax.distributed.initialize` can run only once per process, and it must
not leave a coordination service in the test process.
"""

import json
import sys

import jax

from hsnet_jax.runtime import distributed

CALLS = ("key_value_set", "key_value_dir_get", "get_live_nodes")
KEY, VALUE = "hsnet_jax/test/coordination_client", "it reads back"


def main(port: str, num_processes: str = "1", process_id: str = "0") -> None:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=int(num_processes),
                               process_id=int(process_id))
    try:
        client = distributed.coordination_client()
        report = {"client": None if client is None else type(client).__name__,
                  "missing": [m for m in CALLS if not hasattr(client, m)] if client is not None else list(CALLS)}
        if client is not None and not report["missing"]:
            key = f"{KEY}/{jax.process_index()}"
            client.key_value_set(key, VALUE)
            report["read_back"] = [list(kv) for kv in client.key_value_dir_get(f"{KEY}/") if kv[0] == key]
            report["live"] = sorted(client.get_live_nodes(list(range(jax.process_count()))))
            report["process_count"] = jax.process_count()
        if jax.process_index() == 0:
            print(json.dumps(report))
    finally:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
