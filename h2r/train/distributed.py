"""Multi-host start-up: `jax.distributed.initialize` from flags or from SLURM's environment.

One JAX process runs per host (or per local process in tests); every process runs the same
trainer, reads its own shard of the data and holds its part of every global array.

Sources, first match wins:
  1. explicit `coordinator` / `num_processes` / `process_id` (the `h2r train` flags);
  2. SLURM: a job step with more than one task (`SLURM_NTASKS` > 1) — jax's own SLURM cluster
     detection reads `SLURM_JOB_NODELIST`, `SLURM_PROCID`, ... and picks the coordinator;
  3. nothing: a single process, no initialization.
"""
from __future__ import annotations

import os

from h2r.errors import H2RError


class DistributedError(H2RError):
    """The multi-process settings are incomplete or inconsistent."""


def slurm_num_tasks(environ=os.environ) -> int:
    """Number of tasks in the current SLURM job step (1 outside SLURM)."""
    value = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or "1"
    try:
        return int(value)
    except ValueError as e:
        raise DistributedError(f"SLURM_NTASKS={value!r} is not an integer") from e


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, environ=os.environ) -> str:
    """Initializes jax.distributed if this is a multi-process run; returns how it was set up."""
    import jax  # noqa: PLC0415

    explicit = [coordinator, num_processes, process_id]
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise DistributedError(
                "multi-process training needs all of --coordinator, --num-processes and "
                f"--process-id (got coordinator={coordinator!r}, num_processes={num_processes!r}, "
                f"process_id={process_id!r})")
        if not 0 <= process_id < num_processes:
            raise DistributedError(f"--process-id {process_id} is outside [0, {num_processes})")
        if num_processes == 1:
            return "single process"
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
        return f"explicit: process {process_id} of {num_processes} (coordinator {coordinator})"
    if slurm_num_tasks(environ) > 1:
        # jax's SlurmCluster derives coordinator address, process count and id from SLURM_*.
        jax.distributed.initialize()
        return f"slurm: process {jax.process_index()} of {jax.process_count()}"
    return "single process"
