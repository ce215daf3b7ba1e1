"""Trainer throughput: steps/s, samples/s and achieved FLOP/s of the jitted train step, against
the machine's jitted-matmul FLOP/s measured in the same run.

    .venv/bin/python benchmarks/train.py                      # tiny and small (CPU)
    .venv/bin/python benchmarks/train.py --presets base       # on a GPU
    .venv/bin/python benchmarks/train.py --presets tiny --config model.keypoints=0   # a variant

One JSON line per preset. FLOPs per step come from XLA's cost analysis of the compiled step
(forward + backward + AdamW + EMA); the step runs on a fixed synthetic batch already on the
device (the input pipeline has its own benchmark), on all local devices (mesh data=-1).
Peak: the best of a few timed N x N matmuls in the step's compute dtype (f32 on CPU; the
model's dtype elsewhere), 2 N^3 FLOPs each.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def matmul_flops_per_s(dtype: str, n: int, repeats: int = 10) -> float:
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def bench_preset(preset: str, steps: int, batch_size: int | None, dtype: str | None,
                 overrides: tuple[str, ...] = ()) -> dict:
    import jax

    from h2r.config import load_config
    from h2r.train import metrics, sharding, synthetic, trainer

    config = load_config(os.path.join(ROOT, "experiments", "train", f"{preset}.py"), overrides)
    config.data.kind = "synthetic"
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = -1, 1, 1
    if batch_size:
        config.train.batch_size = batch_size
    if dtype:
        config.model.dtype = dtype
    tc = config.train
    mesh = sharding.make_mesh(config.mesh)
    with sharding.use_mesh(mesh):
        setup = trainer.make_setup(config, mesh)
        params, setup.rest = trainer.init_params(config.model, tc.seed, setup.params_sh)
        train_state = trainer.fresh_train_state(setup.tx, params, tc, setup.state_sh)
        step_fn = trainer.jit_train_step(setup, float(tc.ema_decay))
        batch = trainer.to_global(synthetic._global_batch(0, config), mesh)
        start = time.perf_counter()
        compiled = step_fn.lower(params, train_state, batch).compile()
        compile_s = time.perf_counter() - start
        flops = metrics.compiled_flops(compiled) * mesh.size
        for _ in range(3):  # warm up
            params, train_state, out = compiled(params, train_state, batch)
        jax.block_until_ready(out)
        start = time.perf_counter()
        for _ in range(steps):
            params, train_state, out = compiled(params, train_state, batch)
        jax.block_until_ready((params, out))
        elapsed = time.perf_counter() - start
    n_params = sum(x.size for x in jax.tree.leaves(params))
    return {"preset": preset, "params": int(n_params), "batch_size": int(tc.batch_size),
            "dtype": config.model.dtype, "devices": mesh.size, "compile_s": round(compile_s, 2),
            "steps_per_s": steps / elapsed, "samples_per_s": steps * tc.batch_size / elapsed,
            "flops_per_step": flops, "achieved_flops_per_s": flops * steps / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny,small", help="comma-separated presets (default tiny,small)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per preset (default 20)")
    parser.add_argument("--batch-size", type=int, default=0, help="override train.batch_size")
    parser.add_argument("--dtype", default="", help="override model.dtype (e.g. bfloat16 on a GPU)")
    parser.add_argument("--config", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a training-config override, as for h2r train: --config model.keypoints=0 "
                             "(repeatable; applied to every preset)")
    parser.add_argument("--matmul-size", type=int, default=0, help="N of the peak matmul (default 2048 CPU, 8192 GPU)")
    args = parser.parse_args()
    import jax
    platform = jax.devices()[0].platform
    n = args.matmul_size or (2048 if platform == "cpu" else 8192)
    for preset in args.presets.split(","):
        from h2r.config import load_config
        dtype = args.dtype or load_config(os.path.join(ROOT, "experiments", "train", f"{preset}.py")).model.dtype
        peak_dtype = "float32" if platform == "cpu" else dtype
        # The peak is measured right before and right after the preset (the better of the two),
        # so a machine shared with other jobs is judged under the same load as the step.
        before = matmul_flops_per_s(peak_dtype, n)
        overrides = tuple(f"--config.{o}" for o in args.overrides)
        result = bench_preset(preset, args.steps, args.batch_size or None, args.dtype or None, overrides)
        peak = max(before, matmul_flops_per_s(peak_dtype, n))
        result.update(overrides=list(args.overrides), platform=platform, device_kind=jax.devices()[0].device_kind,
                      matmul_dtype=peak_dtype, matmul_n=n, matmul_flops_per_s=peak,
                      ratio_to_matmul=result["achieved_flops_per_s"] / peak)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
