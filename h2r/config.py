"""Loading ml_collections config files with command-line overrides.

Every stage takes `--config path/to/config.py` plus any number of `--config.a.b=value`
overrides, exactly as ml_collections' config_flags parse them (typos in keys are errors).
"""
from __future__ import annotations

import os
from typing import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from h2r.errors import H2RError


class ConfigError(H2RError, ValueError):
    """A config file or an override is wrong; the message names it."""


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Loads `path` (optionally `path:arg`) and applies `--config.key=value` overrides."""
    file_part = path.split(":", 1)[0]
    if not os.path.isfile(file_part):
        raise ConfigError(f"config file {file_part!r} does not exist")
    for item in overrides:
        if not item.startswith("--config."):
            raise ConfigError(f"unexpected argument {item!r}: overrides look like --config.train.steps=10")
    # A private FlagValues: each call parses its own `--config`, independent of absl's globals.
    argv = ["h2r", f"--config={path}", *overrides]
    flag_values = flags.FlagValues()
    # sys_argv: ml_collections 1.1.0 otherwise reads the overrides from the real sys.argv.
    config_flags.DEFINE_config_file(
        "config", default=None, flag_values=flag_values, lock_config=True, sys_argv=argv)
    try:
        flag_values(argv)
    except SyntaxError as e:
        raise ConfigError(f"config file {e.filename or file_part}, line {e.lineno}: {e.msg}") from None
    except (flags.Error, KeyError, AttributeError, ValueError, TypeError) as e:
        raise ConfigError(f"config {path!r} with overrides {list(overrides)}: {e}") from e
    config = flag_values.config
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"config file {file_part}: get_config() returned a {type(config).__name__}; "
                          "it must return an ml_collections.ConfigDict")
    return config


def save_config(config: ml_collections.ConfigDict, path: str) -> None:
    """Writes the resolved config as JSON, atomically (temp file, then rename)."""
    from h2r.files import atomic_write  # noqa: PLC0415

    with atomic_write(path) as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def config_from_json(path: str) -> ml_collections.ConfigDict:
    """A run's config.json (a named error when it is missing or not JSON)."""
    from h2r.files import read_json  # noqa: PLC0415

    return ml_collections.ConfigDict(read_json(
        path, "run config", "is this a run directory written by `h2r train`?"))
