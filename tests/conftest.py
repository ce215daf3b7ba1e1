"""Shared pytest setup: 8 forced CPU devices so sharding tests run anywhere."""
import os

# Must be set before jax is imported anywhere in the test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
