"""benchmarks/learning.py reads training time from a run's metrics: summed over resumes."""
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _learning_benchmark():
    spec = importlib.util.spec_from_file_location("learning_benchmark", os.path.join(ROOT, "benchmarks", "learning.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_seconds_add_up_over_a_resume(tmp_path):
    # A run killed after step 150 (checkpoint at 100) and resumed: the trainer's clock restarts.
    rows = [(50, 5.0), (100, 10.0), (150, 15.0), (150, 4.0), (200, 9.0)]
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for step, seconds in rows:
            f.write(json.dumps({"step": step, "train_s": seconds, "loss": 1.0}) + "\n")
        f.write(json.dumps({"step": 200, "val_loss": 1.0}) + "\n")   # rows without train_s are skipped
    seconds = _learning_benchmark()._train_seconds(str(tmp_path))
    assert seconds == {50: 5.0, 100: 10.0, 150: 19.0, 200: 24.0}


def test_train_seconds_of_a_run_without_metrics_is_empty(tmp_path):
    assert _learning_benchmark()._train_seconds(str(tmp_path)) == {}
