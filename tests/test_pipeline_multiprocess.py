"""Two JAX processes (jax.distributed on 127.0.0.1, 2 CPU devices each) read disjoint shards
that together are exactly the single-process stream, and assemble global batches on the mesh."""
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

import oxe_fixtures
from h2r.data import pipeline, stats

WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    tests_dir, data_dir, port, process_id, out = sys.argv[1:]
    sys.path.insert(0, tests_dir)
    import oxe_fixtures
    from h2r.data import pipeline

    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=int(process_id))
    config = oxe_fixtures.pipeline_config(data_dir, augment=True)
    it = pipeline.make_iterator(config)  # shard from grain.sharding.ShardByJaxProcess
    local = [next(it) for _ in range(3)]
    mesh = Mesh(np.array(jax.devices()), ("data",))
    batch = pipeline.to_global_batch(local[0], NamedSharding(mesh, P("data")))
    assert batch["actions"].shape == (8, 4, 8), batch["actions"].shape
    gathered = multihost_utils.process_allgather(batch["actions"], tiled=True)
    np.savez(out, global_actions=np.asarray(gathered),
             **{f"{key}/{i}": value for i, b in enumerate(local) for key, value in b.items()})
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_read_disjoint_shards_of_the_same_stream(tmp_path):
    data = tmp_path / "data"
    oxe_fixtures.write_h2r_world(data, scenes=2, tasks=1)
    stats.prepare(str(data))  # index + stats + tokenizer once, before the processes start
    config = oxe_fixtures.pipeline_config(data, augment=True)
    it = pipeline.make_iterator(config, process_index=0, process_count=1)
    single = [next(it) for _ in range(3)]

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    procs = [subprocess.Popen([sys.executable, str(script), tests_dir, str(data), str(port), str(i),
                               str(tmp_path / f"out{i}.npz")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    for p in procs:
        output, _ = p.communicate(timeout=240)
        assert p.returncode == 0, output[-3000:]
    outs = [np.load(tmp_path / f"out{i}.npz") for i in range(2)]
    for i, want in enumerate(single):
        for key in want:
            halves = [o[f"{key}/{i}"] for o in outs]
            assert len(halves[0]) == len(halves[1]) == 4
            np.testing.assert_array_equal(np.concatenate(halves), want[key], err_msg=f"batch {i} {key}")
    # Disjoint shards: each position of the single-process stream above came from exactly one
    # process (its first or second half of every global batch), and the halves differ.
    assert not np.array_equal(outs[0]["actions/0"], outs[1]["actions/0"])
    for out in outs:  # the global array assembled on the 4-device mesh is the single-process batch
        np.testing.assert_array_equal(out["global_actions"], single[0]["actions"])
