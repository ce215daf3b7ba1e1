"""A real single-node SLURM cluster on localhost for tests (Debian's slurmctld + slurmd + munge,
installed by .ci/install-system.sh). See ../shared/STACK_NOTES.md for the verified recipe.

`slurm_cluster` (pytest fixture, module scope): starts munged (if not already running),
slurmctld and slurmd with a slurm.conf in a temp dir, waits until the node is idle, sets
SLURM_CONF for this process and its children, yields the conf path, and stops the daemons it
started by PID.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

CONF = """\
ClusterName=h2rtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
DependencyParameters=kill_invalid_depend
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=100000
NodeName={host} NodeAddr=127.0.0.1 {layout} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_layout() -> str:
    """The NodeName CPU/memory fields, as `slurmd -C` reports this machine."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = out.split()
    keep = ("CPUs=", "Boards=", "SocketsPerBoard=", "CoresPerSocket=", "ThreadsPerCore=", "RealMemory=")
    return " ".join(f for f in fields if f.startswith(keep))


def _munge_running() -> bool:
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def _wait(predicate, seconds: float, what: str, logs: list[str]) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    tails = "\n".join(f"--- {p}\n" + (open(p).read()[-2000:] if os.path.exists(p) else "(missing)") for p in logs)
    raise RuntimeError(f"SLURM test cluster: {what} did not happen in {seconds}s\n{tails}")


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("munged")):
        pytest.skip("SLURM is not installed (run .ci/install-system.sh)")
    if os.geteuid() != 0:
        pytest.skip("the single-node SLURM fixture runs its daemons as root")
    work = tmp_path_factory.mktemp("slurm")
    for d in ("state", "spool"):
        (work / d).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = work / "slurm.conf"
    conf.write_text(CONF.format(host=host, dir=work, layout=_node_layout(), ctld_port=_free_port(),
                                d_port=_free_port()))
    started: list[subprocess.Popen] = []
    if not _munge_running():
        os.makedirs("/run/munge", exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        # munged daemonizes itself; --foreground keeps it our child so we can stop it by PID.
        started.append(subprocess.Popen(["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground"]))
        _wait(_munge_running, 10, "munged start-up", [])
    env = {**os.environ, "SLURM_CONF": str(conf)}
    logs = [str(work / "slurmctld.log"), str(work / "slurmd.log")]
    started.append(subprocess.Popen(["slurmctld", "-D", "-f", str(conf)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    started.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", host], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        def idle():
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env).stdout
            return "idle" in out
        _wait(idle, 30, "the node becoming idle", logs)
        yield str(conf)
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, capture_output=True)
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(started):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
