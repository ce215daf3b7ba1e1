"""Atomic writes: a crash mid-write leaves the previous file intact and no temp file behind."""
import json
import os

import pytest

from h2r import files
from h2r.errors import DataError


def test_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "result.json"
    files.write_json(path, {"version": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_write(path) as f:
            f.write('{"version": 2, "half')
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["result.json"]
    files.write_json(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 2}


def test_read_json_names_the_file_and_what_it_is(tmp_path):
    with pytest.raises(DataError, match=r"normalization stats .*missing.json not found; run it"):
        files.read_json(tmp_path / "missing.json", "normalization stats", "run it")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="tokenizer .*bad.json is not valid JSON"):
        files.read_json(bad, "tokenizer", "regenerate it")
