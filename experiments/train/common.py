"""Shared builder for the training presets: `h2r train --config experiments/train/<size>.py`.

Keys scripts rely on: train.steps, data.dir, train.init_from, mesh.{data,fsdp,tensor}.
The sample-layout fields of config.data are copied from config.model so the two always agree.
"""
import ml_collections

from h2r.model import model_config

LAYOUT_KEYS = ("max_state_dim", "max_action_dim", "action_horizon", "max_instruction_len", "max_subtask_len")


def make_config(size: str, *, steps: int, batch_size: int, lr: float, warmup_steps: int,
                checkpoint_every: int, log_every: int, mesh=(-1, 1, 1)) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = model_config(size)

    config.data = ml_collections.ConfigDict(dict(
        dir="",                    # directory written by `h2r data generate` (or kind=synthetic)
        kind="pretrain",           # pretrain | cotrain | mixture | synthetic (trainer benchmarks)
        target="sort_eggs",        # held-out setting name (cotrain: whose target data)
        diversity=1.0,             # fraction of the target robot's scene x task pretraining combos
        other_embodiments=False,   # the "100% + other robots" level
        # The factorial study's axes (one varied at a time; h2r/data/mixture.py):
        scene_diversity=1.0,       # nested fraction of the robot's pretraining scenes
        task_diversity=1.0,        # nested fraction of its pretraining task families
        embodiment_diversity=0.0,  # nested fraction of the other robots added
        sample_budget=0,           # unique episodes drawn, equal across levels (0 = all)
        human=False,               # co-train with the human data of the target setting
        human_weight=0.5,
        human_loss="both",         # both | subtask | action
        use_wrist=True,
        worker_count=0,            # grain worker processes (0 = read in the training process)
        seed=0,
        # Beyond the contract (h2r/data/pipeline.py DEFAULTS):
        norm="quantile",           # quantile | mean_std
        augment=False,             # random crop + brightness/contrast (grain RandomMap)
        subset_seed=0,             # permutation behind the nested diversity subsets
        mixture="",                # kind=mixture: "name:weight,name:weight"
    ))
    for key in LAYOUT_KEYS:
        config.data[key] = config.model[key]

    config.train = ml_collections.ConfigDict(dict(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=1e-4,
        grad_clip=1.0,
        ema_decay=0.999,
        checkpoint_every=checkpoint_every,
        keep=3,                    # last N checkpoints kept ...
        keep_period=0,             # ... plus every keep_period-th step (0 = none) and the best
        log_every=log_every,
        seed=0,
        init_from="",              # run directory of a pretrained run (co-training)
    ))
    config.mesh = ml_collections.ConfigDict(dict(zip(("data", "fsdp", "tensor"), mesh)))
    return config
