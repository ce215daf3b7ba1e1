"""h2r: when does human-to-robot transfer emerge in VLA policies?

Stages (one subpackage each): world -> data -> model/train -> eval -> study.
"""

__version__ = "0.1.0"


def load_policy(workdir, step=None, *, ema=False):
    """Restores a trained policy from a run directory (see h2r.policy.load_policy); ema=True
    uses the exponential moving average of the params."""
    from h2r.policy import load_policy as _load_policy  # noqa: PLC0415  (keeps `import h2r` light)

    return _load_policy(workdir, step=step, ema=ema)
