"""Training metrics: clu metric collections, clu writers (TensorBoard + JSON lines), progress line.

Per-step values stay on the device and are averaged with `clu.metrics.Average` between log
steps, so the training loop never waits for the host except when it logs.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from clu import metric_writers
from clu import metrics as clu_metrics

from h2r.files import atomic_write


class JsonlWriter(metric_writers.MetricWriter):
    """A clu MetricWriter appending one JSON object per write_scalars call: {"step": s, ...}."""

    def __init__(self, path: str):
        self._file = open(path, "a")  # noqa: SIM115  (kept open for the run)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]):
        row = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def write_summaries(self, step, values, metadata=None):
        pass

    def write_images(self, step, images):
        pass

    def write_videos(self, step, videos):
        pass

    def write_audios(self, step, audios, *, sample_rate):
        pass

    def write_texts(self, step, texts):
        pass

    def write_histograms(self, step, arrays, num_buckets=None):
        pass

    def write_hparams(self, hparams):
        pass

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


def make_writer(workdir: str, is_main: bool) -> metric_writers.MetricWriter:
    """TensorBoard (W/tb) and W/metrics.jsonl on the main process; logging only elsewhere."""
    if not is_main:
        return metric_writers.create_default_writer(just_logging=True, asynchronous=False)
    return metric_writers.MultiWriter([
        metric_writers.SummaryWriter(os.path.join(workdir, "tb")),
        JsonlWriter(os.path.join(workdir, "metrics.jsonl")),
    ])


def read_jsonl(workdir: str) -> list[dict]:
    """The rows of W/metrics.jsonl (empty when absent)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_jsonl(workdir: str, step: int) -> None:
    """Drops rows after `step` (logged by a run killed after its last checkpoint), atomically,
    so a resumed run's metrics.jsonl has each step once."""
    rows = read_jsonl(workdir)
    if all(r.get("step", 0) <= step for r in rows):
        return
    path = os.path.join(workdir, "metrics.jsonl")
    with atomic_write(path) as f:
        f.writelines(json.dumps(r) + "\n" for r in rows if r.get("step", 0) <= step)


def collection_for(names) -> type[clu_metrics.Collection]:
    """A clu Collection averaging each named per-step scalar."""
    return clu_metrics.Collection.create(**{n: clu_metrics.Average.from_output(n) for n in names})


def compiled_flops(compiled) -> float | None:
    """FLOPs of one call of a compiled XLA program, from XLA's cost analysis (None if unknown).

    For an SPMD-partitioned program the analysis describes one device's program, so the
    total is that times the number of devices it runs on.
    """
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # noqa: BLE001  (some backends do not implement it)
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(analysis["flops"])


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class NonFiniteLoss(FloatingPointError):
    """Raised by `MetricLogger.flush` when a step produced a NaN/inf loss."""

    def __init__(self, step: int, value: float):
        super().__init__(f"non-finite loss {value} at step {step}")
        self.step = step
        self.value = value


class MetricLogger:
    """Accumulates per-step metrics; every flush checks them, writes averages and a progress line."""

    def __init__(self, workdir: str, *, total_steps: int, global_batch_size: int,
                 flops_per_step: float | None, is_main: bool, stream=sys.stdout):
        self.writer = make_writer(workdir, is_main)
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        self.flops_per_step = flops_per_step
        self.is_main = is_main
        self.stream = stream
        self._collection = None
        self._losses: list[tuple[int, jax.Array]] = []
        self._window_start = (None, None)  # (step, time) at the start of the averaging window
        self._loop_start = None            # when this process started training (train_s)
        # Training time of the processes before this one (a resumed run): the rows left in
        # metrics.jsonl after `truncate_jsonl` end at the resumed step, so its last train_s is it.
        rows = read_jsonl(workdir) if is_main else []
        self._train_s_before = float(rows[-1].get("train_s", 0.0)) if rows else 0.0

    def start(self, step: int):
        self._window_start = (step, time.perf_counter())
        if self._loop_start is None:
            self._loop_start = self._window_start[1]

    def record(self, step: int, step_metrics: Mapping[str, jax.Array]):
        """Adds one step's metrics (device arrays; no host sync). `step` counts finished steps."""
        if self._collection is None:
            self._cls = collection_for(sorted(step_metrics))
        update = self._cls.single_from_model_output(**step_metrics)
        self._collection = update if self._collection is None else self._collection.merge(update)
        self._losses.append((step, step_metrics["loss"]))

    def check_finite(self):
        """Raises NonFiniteLoss naming the first step of the window whose loss was NaN/inf."""
        if not self._losses:
            return
        values = np.asarray(jax.device_get(jnp.stack([v for _, v in self._losses])))
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise NonFiniteLoss(self._losses[bad[0]][0], float(values[bad[0]]))

    def flush(self, step: int, extra: Mapping[str, float] = ()) -> dict[str, float]:
        """Checks the window's losses, writes averages + throughput, prints the progress line."""
        self.check_finite()
        if self._collection is None:
            return {}
        scalars = {k: float(v) for k, v in self._collection.compute().items()}
        start_step, start_time = self._window_start
        elapsed = time.perf_counter() - start_time
        steps_per_s = (step - start_step) / elapsed if elapsed > 0 else float("nan")
        scalars.update(dict(extra))
        scalars["steps_per_s"] = steps_per_s
        scalars["samples_per_s"] = steps_per_s * self.global_batch_size
        # Training wall time up to this step, summed over the processes of a resumed run
        # (compilation excluded; work lost after a kill is not counted): the learning benchmark's x axis.
        scalars["train_s"] = self._train_s_before + time.perf_counter() - self._loop_start
        if self.flops_per_step:
            scalars["flops_per_s"] = steps_per_s * self.flops_per_step
        self.writer.write_scalars(step, scalars)
        self.writer.flush()
        if self.is_main:
            eta = (self.total_steps - step) / steps_per_s if steps_per_s > 0 else float("inf")
            terms = " ".join(f"{k} {scalars[k]:.4g}" for k in sorted(scalars)
                             if k not in ("steps_per_s", "samples_per_s", "flops_per_s", "lr", "train_s"))
            print(f"step {step}/{self.total_steps} {terms} lr {scalars.get('lr', 0):.3g} "
                  f"{steps_per_s:.2f} steps/s ETA {format_duration(eta)}", file=self.stream, flush=True)
        self._collection = None
        self._losses = []
        self._window_start = (step, time.perf_counter())
        return scalars

    def close(self):
        self.writer.close()
