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
    import io

    from h2r.config import load_config
    from h2r.train.trainer import train

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = str(tmp_path_factory.mktemp("micro_run") / "run")
    config = load_config(os.path.join(root, "experiments", "train", "tiny.py"), [
        f"--config.data.dir={micro_dataset}", "--config.data.kind=cotrain", "--config.data.target=sort_eggs",
        "--config.data.human=True", "--config.train.steps=2", "--config.train.batch_size=8",
        "--config.train.checkpoint_every=2", "--config.train.log_every=1", "--config.train.warmup_steps=1"])
    train(config, workdir, stream=io.StringIO())
    return workdir
