"""Two local JAX processes (jax.distributed, gloo, 2 CPU devices each) train to the same params
as one process with 4 devices, on a (data=2, fsdp=2) mesh."""
import numpy as np

import train_utils as tu

RUN = ["--config.train.steps=4", "--config.train.checkpoint_every=4", "--config.train.log_every=2",
       "--config.mesh.data=2", "--config.mesh.fsdp=2"]


def test_two_processes_train_like_one(tmp_path):
    port = tu.free_port()
    two = [tu.start_train(tmp_path / "two", *RUN, devices=2, extra_args=[
        "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)])
        for i in range(2)]
    one = tu.start_train(tmp_path / "one", *RUN, devices=4)
    outputs = [p.communicate(timeout=400)[0] for p in [*two, one]]
    for p, out in zip([*two, one], outputs):
        assert p.returncode == 0, out[-4000:]
    assert "process 0 of 2" in outputs[0] and "process 1 of 2" in outputs[1]
    assert "4 devices (2 local" in outputs[0] and "4 devices (4 local" in outputs[2]
    multi = tu.flat(tu.restore_item(tmp_path / "two", 4, "params"))
    single = tu.flat(tu.restore_item(tmp_path / "one", 4, "params"))
    assert multi.keys() == single.keys()
    for key in single:
        np.testing.assert_allclose(multi[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
