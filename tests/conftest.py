"""Shared pytest setup: 8 forced CPU devices so sharding tests run anywhere."""
import os
import shutil
import tempfile

# Must be set before jax is imported anywhere in the test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One persistent compilation cache for the whole run, both xdist workers and every subprocess
# (h2r train/eval, study cells): the suite compiles the same tiny programs dozens of times, and
# compilation is most of a 2-step training cell (a micro `h2r train`: 44 s cold, 18 s warm).
# A cached executable is the same program, so results are unchanged. The xdist workers inherit
# the controller's environment, so they share its directory; the controller removes it at the end.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"h2r-tests-jax-cache-{os.getpid()}"))
# Cache every program, however quick to compile (the defaults skip those under 1 s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


# --- data generation fixtures (owner: h2r/data/generate.py) -----------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def micro_dataset(tmp_path_factory):
    """Directory of RLDS datasets generated once per session from experiments/data/micro.py:
    `DIR/h2r_<embodiment>/1.0.0/` for every embodiment (robots and `human`), and
    `DIR/generation.json`."""
    from h2r.config import load_config
    from h2r.data import generate

    out = tmp_path_factory.mktemp("micro_data") / "data"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    generate.generate(load_config(os.path.join(root, "experiments", "data", "micro.py")), out)
    return out


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory, micro_dataset):
    """A tiny run briefly trained (2 steps) on the micro data: what `h2r eval` needs (its data has
    generation.json). Shared: tests that damage it work on a copy."""
    import train_utils

    return train_utils.train_on_micro_data(str(tmp_path_factory.mktemp("micro_run") / "run"), micro_dataset)


# --- order: the longest test files first ------------------------------------------------------
# CI runs `pytest -n 2 --dist loadfile`: each file goes to one of two workers in collection order.
# Starting the longest files first (by `--durations`, 2026-12-06) keeps one of them from running
# alone at the end while the other worker idles.
LONGEST_FIRST = ("test_learning_closed_loop.py", "test_study_e2e.py", "test_faults.py",
                 "test_study_slurm.py", "test_transforms.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = os.path.basename(str(item.path))
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: the order inside a file is unchanged


def pytest_sessionfinish(session):
    # The controller (not an xdist worker) removes the run's compilation cache, if it made it.
    if not hasattr(session.config, "workerinput") and "h2r-tests-jax-cache-" in os.environ["JAX_COMPILATION_CACHE_DIR"]:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
