"""Atomic writes (files and directories): a crash mid-write leaves the previous version intact and
no temp file or directory behind."""
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


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_atomic_dir_replaces_the_old_directory_whole_or_not_at_all(tmp_path, monkeypatch, exchange):
    if not exchange:  # a kernel or filesystem without RENAME_EXCHANGE
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    out = tmp_path / "report"
    with files.atomic_dir(out) as tmp:
        assert not out.exists()  # nothing visible before the block ends
        open(os.path.join(tmp, "index.html"), "w").write("v1")
    assert sorted(os.listdir(out)) == ["index.html"]
    with pytest.raises(RuntimeError):
        with files.atomic_dir(out) as tmp:
            open(os.path.join(tmp, "index.html"), "w").write("half")
            raise RuntimeError("killed")
    assert (out / "index.html").read_text() == "v1"
    with files.atomic_dir(out) as tmp:
        open(os.path.join(tmp, "results.csv"), "w").write("v2")
    assert sorted(os.listdir(out)) == ["results.csv"]  # replaced, not merged
    assert os.listdir(tmp_path) == ["report"]          # no temp or old directory left


def test_atomic_path_hands_a_name_to_writers_that_need_one(tmp_path):
    import numpy as np

    path = tmp_path / "frames.npy"
    with files.atomic_path(path) as tmp:
        assert tmp.endswith(".npy") and not path.exists()
        frames = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(2, 3))
        frames[:] = 7
        frames.flush()
    assert np.load(path).sum() == 42 and os.listdir(tmp_path) == ["frames.npy"]
