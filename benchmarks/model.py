"""Model benchmark: params, FLOPs per train step (XLA cost analysis), ms per jitted train step
(grad + AdamW) at the preset batch size, and the ratio of achieved FLOP/s to this machine's
jitted matmul FLOP/s measured in the same run. One JSON line per preset.

The CPU is shared, so the timings move with other load: each round times one matmul (best of
3) right before one train step, and the reported ratio is the median of the per-round ratios
(`ratio_to_matmul_peak`); `best_*` fields use the fastest step and the fastest matmul.

    .venv/bin/python benchmarks/model.py --sizes tiny small [--steps 10] [--dtype float32]
    .venv/bin/python benchmarks/model.py --sizes --analyze base large   # params + FLOPs only

`--analyze` sizes are built abstractly (nnx.eval_shape, nothing allocated) and their train step
only lowered: FLOPs from the lowered HLO's cost analysis (within 0.1% of the compiled one).
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from h2r.model import PRESET_BATCH_SIZE, VLA, model_config
from h2r.model.example_batch import example_batch


def matmul_peak(n: int = 2048, dtype=jnp.float32):
    """A function returning the best-of-`repeats` FLOP/s of one jitted n x n matmul now: the
    machine's practical peak (the same measure as STACK_NOTES.md)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()

    def measure(repeats: int = 3) -> float:
        return 2 * n ** 3 / min(_timed(lambda: matmul(a, b).block_until_ready()) for _ in range(repeats))

    return measure


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_train_step(graphdef):
    """A functional train step over the (model, optimizer) state, as a trainer would jit it."""

    def train_step(state, batch, rng):
        model, optimizer = nnx.merge(graphdef, state)
        (_, metrics), grads = nnx.value_and_grad(lambda m: m.compute_loss(batch, rng), has_aux=True)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), metrics

    return jax.jit(train_step, donate_argnums=0)


def bench(size: str, steps: int, dtype: str, batch_size: int | None, peak) -> dict:
    config = model_config(size)
    config.dtype = dtype or config.dtype
    batch_size = batch_size or PRESET_BATCH_SIZE[size]
    model = VLA(config, rngs=nnx.Rngs(0))
    params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    batch = {k: jnp.asarray(v) for k, v in example_batch(config, batch_size).items()}
    step = make_train_step(graphdef)

    start = time.perf_counter()
    compiled = step.lower(state, batch, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - start
    flops = float(compiled.cost_analysis()["flops"])

    state, metrics = step(state, batch, jax.random.key(0))  # warm-up
    jax.block_until_ready(metrics)
    times, peaks = [], []
    for i in range(steps):
        peaks.append(peak())
        start = time.perf_counter()
        state, metrics = step(state, batch, jax.random.key(i))
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    times, peaks = np.array(times), np.array(peaks)
    seconds = float(np.median(times))
    return {
        "size": size, "dtype": config.dtype, "batch_size": batch_size, "params": int(params),
        "flops_per_step": flops, "ms_per_step": 1e3 * seconds, "steps_per_s": 1.0 / seconds,
        "samples_per_s": batch_size / seconds, "achieved_flops_per_s": flops / seconds,
        "matmul_peak_flops_per_s": float(np.median(peaks)),
        "ratio_to_matmul_peak": float(np.median(flops / times / peaks)),
        "best_ms_per_step": 1e3 * float(times.min()), "best_matmul_peak_flops_per_s": float(peaks.max()),
        "best_ratio_to_matmul_peak": float(flops / times.min() / peaks.max()),
        "compile_s": compile_s, "device": jax.devices()[0].device_kind, "num_devices": 1,
    }


def analyze(size: str, dtype: str, batch_size: int | None) -> dict:
    """Params and FLOPs per train step without allocating or compiling (for base/large on CPU)."""
    config = model_config(size)
    config.dtype = dtype or config.dtype
    batch_size = batch_size or PRESET_BATCH_SIZE[size]

    def init():
        model = VLA(config, rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)

    model, optimizer = nnx.eval_shape(init)
    params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    graphdef, state = nnx.split((model, optimizer))
    batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), example_batch(config, batch_size))
    lowered = make_train_step(graphdef).lower(state, batch, jax.random.key(0))
    return {"size": size, "dtype": config.dtype, "batch_size": batch_size, "params": int(params),
            "flops_per_step": float(lowered.cost_analysis()["flops"]), "remat": bool(config.remat)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=["tiny", "small"], help="presets to time")
    parser.add_argument("--analyze", nargs="*", default=[], help="presets to size only (params, FLOPs)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--dtype", default=None, help="activation dtype (default: the preset's; params stay float32)")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the preset's")
    args = parser.parse_args()
    for size in args.analyze:
        print(json.dumps(analyze(size, args.dtype, args.batch_size)), flush=True)
    peak = matmul_peak()
    for size in args.sizes:
        print(json.dumps(bench(size, args.steps, args.dtype, args.batch_size, peak)), flush=True)


if __name__ == "__main__":
    main()
