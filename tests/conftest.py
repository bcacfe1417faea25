"""Shared pytest setup: the repository root on sys.path; the environment and data directory
of the end-to-end training runs (tests/train_runs.py)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # so tests can import the convert/ and benchmarks/ packages


# The files that take minutes, longest first (`--durations`, 2026-12-02): `make test` hands whole
# files to two pytest-xdist workers in collection order (`--no-loadscope-reorder`; xdist would
# otherwise start with the files of most tests), and a long file started last would leave one
# worker running it alone while the other waits.
LONGEST_FIRST = ("test_train.py", "test_distributed.py", "test_interruptions.py", "test_benchmark.py",
                 "test_loop.py", "test_seeds.py", "test_placement_runs.py", "test_train_step.py", "test_deploy.py",
                 "test_torch_parity.py", "test_video.py", "test_ablate.py", "test_export_torch.py", "test_folds.py",
                 "test_hostile.py", "test_convert.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of LONGEST_FIRST before the others; each file's tests stay together, in order."""
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """Subprocess environment sharing one persistent XLA cache: only the first run compiles.
    Progress lines at every tenth (HSNET_PROGRESS_SECONDS=0): the tests wait for them ("epoch 2/3")
    to signal a run at a known moment, and a test's stderr is a pipe, where the default writes a
    line at most once a minute."""
    cache = tmp_path_factory.mktemp("xla_cache")
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", HSNET_PROGRESS_SECONDS="0")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Where the generated set is prepared (by the first run that needs it)."""
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory whose network answers happiness for every image (tests/handmade_run.py),
    for the modules that predict with it (predict, video, serve, bad inputs). The generated set
    need not be prepared: predict reads only its stored image size."""
    from hsnet_jax.data import CANONICAL_EXPRESSIONS
    from tests.handmade_run import make_run

    workdir = str(tmp_path_factory.mktemp("run"))
    make_run(workdir, dataset="synthetic/small", data_dir=str(tmp_path_factory.mktemp("data")),
             class_names=list(CANONICAL_EXPRESSIONS), answer="happiness")
    return workdir
