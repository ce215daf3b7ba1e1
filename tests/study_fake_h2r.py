"""A stand-in for the `h2r` command, for the study *executor* tests only (scheduling, resume,
kill, SLURM submission): trivial but real processes that write the files the real stages
write (metrics.jsonl and a step counter for `train`, eval.json for `eval`, embeddings.json +
tsne.png for `eval embeddings`), so those tests run in seconds. The end-to-end tests run the
real stack. Every invocation is appended to <workdir>/invocations.txt so tests can count them.

Knobs (environment): FAKE_STEP_SECONDS (sleep per training step), FAKE_FAIL (cells whose
workdir contains this string exit 1).
"""
import hashlib
import json
import os
import signal
import struct
import sys
import time
import zlib


def _png(path: str, size: int = 16) -> None:
    """A small valid RGB PNG (a gradient), written without any imaging library."""
    rows = b"".join(b"\x00" + bytes(v for x in range(size) for v in (x * 15, y * 15, 128)) for y in range(size))
    chunk = lambda tag, data: struct.pack(">I", len(data)) + tag + data + struct.pack(  # noqa: E731
        ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _arg(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def _override(argv, key, default=None):
    prefix = f"--config.{key}="
    return next((a[len(prefix):] for a in argv if a.startswith(prefix)), default)


def _log(workdir, argv):
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "invocations.txt"), "a") as f:
        f.write(" ".join(argv) + "\n")


def _maybe_fail(path):
    fail = os.environ.get("FAKE_FAIL")
    if fail and fail in path:
        print(f"fake failure for {path}", file=sys.stderr)
        sys.exit(1)


def train(argv):
    workdir = _arg(argv, "--workdir")
    _log(workdir, argv)
    _maybe_fail(workdir)
    steps = int(_override(argv, "train.steps"))
    step_file = os.path.join(workdir, "fake_step")
    step = int(open(step_file).read()) if os.path.exists(step_file) else 0
    print(f"fake train: resuming at step {step} of {steps}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # like the trainer: the last step is saved
    with open(os.path.join(workdir, "metrics.jsonl"), "a") as metrics:
        while step < steps:
            time.sleep(float(os.environ.get("FAKE_STEP_SECONDS", "0.05")))
            step += 1
            metrics.write(json.dumps({"step": step, "loss": 1.0 / step}) + "\n")
            metrics.flush()
            with open(step_file + ".tmp", "w") as f:
                f.write(str(step))
            os.replace(step_file + ".tmp", step_file)


def evaluate(argv):
    workdir, out = _arg(argv, "--workdir"), _arg(argv, "--out")
    _log(os.path.dirname(out), argv)
    _maybe_fail(out)
    episodes = int(_arg(argv, "--episodes"))
    digest = hashlib.sha256((workdir + _arg(argv, "--setting")).encode()).digest()
    successes = [bool(digest[i % len(digest)] % 2) for i in range(episodes)]
    rate = sum(successes) / episodes
    with open(out, "w") as f:
        json.dump(dict(success_rate=rate, ci95=[max(0.0, rate - 0.2), min(1.0, rate + 0.2)], episodes=episodes,
                       successes=successes, setting=_arg(argv, "--setting"), step=1, mean_length=10.0,
                       phase_completion=[rate]), f)


def embeddings(argv):
    out = _arg(argv, "--out")
    os.makedirs(out, exist_ok=True)
    _log(out, argv)
    digest = hashlib.sha256(_arg(argv, "--workdir").encode()).digest()
    with open(os.path.join(out, "embeddings.json"), "w") as f:
        json.dump(dict(probe_accuracy=dict(accuracy=0.5 + digest[0] / 512), phase_retrieval=dict(
            above_chance=digest[1] / 255)), f)
    _png(os.path.join(out, "tsne.png"))


def generate(argv):
    out = _arg(argv, "--out")
    os.makedirs(out, exist_ok=True)
    _log(out, argv)
    with open(os.path.join(out, "fake_dataset.txt"), "w") as f:
        f.write("fake\n")


def main(argv):
    if argv[:2] == ["data", "generate"]:
        return generate(argv)
    if argv[:1] == ["train"]:
        return train(argv)
    if argv[:2] == ["eval", "embeddings"]:
        return embeddings(argv)
    if argv[:1] == ["eval"]:
        return evaluate(argv)
    sys.exit(f"fake h2r: unsupported command {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
