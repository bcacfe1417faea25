"""config.data_placement: auto's rule, and the three feeders delivering the sampler's very
batches from a real prepared split (device: indices into the set on the devices; host: rows
gathered in memory; stream: rows read by Grain from the array_record files, no more)."""

import dataclasses
import threading

import jax
import ml_collections
import numpy as np
import pytest

import data_trees
from hsnet_jax.runtime.devices import make_mesh
from hsnet_jax.data import open_split, prepare_dataset
from hsnet_jax.training.sampler import BatchSampler
from hsnet_jax.training import placement
from hsnet_jax.config import base_config, check_config
from hsnet_jax.errors import HSNetError

GB = 10**9


@pytest.mark.parametrize("nbytes, device_free, host_free, caps, expected", [
    (1 * GB, 16 * GB, 64 * GB, (0, 0), "device"),
    (9 * GB, 16 * GB, 64 * GB, (0, 0), "host"),  # FERG-DB at 256 px on a 16 GB accelerator
    (57 * GB, 80 * GB, 64 * GB, (0, 0), "stream"),  # AffectNet at 256 px
    (1 * GB, 16 * GB, 64 * GB, (GB - 1, 0), "host"),  # the caps override what is free
    (1 * GB, 16 * GB, 64 * GB, (GB - 1, GB - 1), "stream"),
    (1 * GB, 16 * GB, 64 * GB, (GB, GB), "device"),
])
def test_auto_rule(nbytes, device_free, host_free, caps, expected):
    chosen, why = placement.choose(nbytes, device_free, host_free, *caps)
    assert chosen == expected
    assert f"the training split ({nbytes / GB:.3g} GB)" in why and ("cap" in why) == (caps != (0, 0))


def test_cpu_devices_take_an_equal_part_of_host_memory():
    devices = jax.local_devices()
    assert placement.device_free_bytes(devices, 8 * GB) == 8 * GB // len(devices)
    assert placement.host_free_bytes() > 0


def _config(**kwargs):
    return ml_collections.ConfigDict(dict(dict(data_placement="auto", max_device_bytes=0, max_host_bytes=0),
                                          **kwargs))


def test_resolve_explicit_caps_and_bad_values():
    assert placement.resolve(_config(data_placement="stream"), 1) == ("stream", "config.data_placement")
    assert placement.resolve(_config(max_device_bytes=99), 100)[0] == "host"
    assert placement.resolve(_config(max_device_bytes=99, max_host_bytes=99), 100)[0] == "stream"
    bad = base_config("synthetic")
    bad.data_placement = "gpu"
    with pytest.raises(HSNetError, match="config.data_placement must be one of auto, device, host, stream, got 'gpu'"):
        check_config(bad)
    bad = base_config("synthetic")
    bad.max_host_bytes = -1
    with pytest.raises(HSNetError, match="config.max_host_bytes must be 0 .* got -1"):
        check_config(bad)


@dataclasses.dataclass
class _CountingSource:
    """The real TFDS data source, counting the rows read through it."""

    source: object
    rows_read: list = dataclasses.field(default_factory=list)  # list.append is atomic across threads

    def __len__(self):
        return len(self.source)

    def __getitem__(self, row):
        self.rows_read.append(row)
        return self.source[row]


@pytest.fixture(scope="module")
def train_source(tmp_path_factory):
    root = tmp_path_factory.mktemp("placement")
    data_trees.raf_db(str(root / "RAF-DB"), train_per_class=4, test_per_class=1)
    prepare_dataset("raf_db", data_dir=str(root / "data"), manual_dir=str(root / "RAF-DB"))
    return open_split("raf_db", "train", str(root / "data"))


def _host(a: jax.Array) -> np.ndarray:
    return np.asarray(a)


def test_feeders_deliver_the_sampler_batches(train_source):
    split = train_source.load()
    assert len(split) == len(train_source) == 28 and train_source.nbytes == split.images.nbytes
    mesh = make_mesh()
    rows = BatchSampler(len(train_source), 4, seed=3).epoch_indices(1)  # 7 steps of 4
    counting = _CountingSource(train_source.source)
    streamed = dataclasses.replace(train_source, source=counting)
    feeders = {p: placement.build_feeder(p, mesh, streamed, split) for p in ("device", "host", "stream")}
    for start, k in ((0, 4), (3, 2)):  # a resumed epoch starts inside it; the last dispatch is short
        firsts = list(range(start, 7, k))
        expected = [(split.images[rows[f:f + k]], split.labels[rows[f:f + k]]) for f in firsts]
        for name, feeder in feeders.items():
            got = list(feeder.dispatches(rows, start, k))
            assert [f for f, _ in got] == firsts, name
            for (images, labels), (_, inputs) in zip(expected, got):
                if name == "device":
                    set_images, set_labels, idx = map(_host, inputs)
                    inputs = (set_images[idx], set_labels[idx])
                np.testing.assert_array_equal(_host(inputs[0]), images, err_msg=name)
                np.testing.assert_array_equal(_host(inputs[1]), labels, err_msg=name)
    # stream read the rows of its batches, nothing else
    assert sorted(counting.rows_read) == sorted(rows.ravel().tolist() + rows[3:].ravel().tolist())


def test_closing_a_row_feeder_early_stops_its_thread(train_source):
    split = train_source.load()
    mesh = make_mesh()
    rows = BatchSampler(len(train_source), 4, seed=0).epoch_indices(0)
    feeder = placement.build_feeder("host", mesh, train_source, split)
    dispatches = feeder.dispatches(rows, 0, 1)
    next(dispatches)  # the thread has run ahead and waits on the full queue
    assert _feeder_threads() == 1
    dispatches.close()  # what the training loop does on SIGTERM
    assert _feeder_threads() == 0


def _feeder_threads() -> int:
    return sum(t.name == "hsnet-host-feeder" and t.is_alive() for t in threading.enumerate())


def test_a_failing_read_reaches_the_training_loop(train_source):
    def broken(rows, start, k):
        yield from ()
        raise OSError("array_record shard unreadable")

    feeder = placement.RowFeeder(make_mesh(), broken, "stream")
    with pytest.raises(OSError, match="unreadable"):
        list(feeder.dispatches(np.zeros((2, 4), np.int64), 0, 1))
