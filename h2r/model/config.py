"""Model size presets: `model_config(size)` -> ml_collections.ConfigDict for config.model.

The data-layout fields (image_size, vocab_size, max_*_len, max_state_dim, max_action_dim,
action_horizon) must agree with config.data and the tokenizer: the training configs set them
from the same values (the trainer checks them against the first batch).
"""
from __future__ import annotations

import ml_collections

# Per-preset architecture. Widths are multiples of 64 (128 from small on) so the matmuls tile
# well on CPU vector units and divide evenly over fsdp/tensor mesh axes.
_PRESETS = {
    # A CPU train step at batch 32 takes tens of milliseconds: the tiny study trains many models.
    # Keypoints: objects are 2-4 px at 32 px; spatial-softmax keypoints localize them (BUILD_NOTES.md,
    # "Learning: what mattered").
    # The subgoal head teaches the keypoints to find every object of the task (without it they
    # tracked the white egg but not the brown one). Deterministic sampling (sample_noise 0): the
    # target task in distribution 9/64 vs 5/64 at 1.0 (BUILD_NOTES.md, "Learning", session 4).
    # The summary token (an MLP over all keypoints and the proprio) lifted the target task in
    # distribution from 0.11-0.18 to 0.35-0.40 at 6000 steps (BUILD_NOTES.md, "Learning", sessions 7-8).
    "tiny": dict(image_size=32, patch_size=8, width=64, depth=2, num_heads=2, head_dim=32, mlp_dim=256,
                 expert_width=64, expert_depth=2, expert_num_heads=2, expert_mlp_dim=256, keypoints=16,
                 subgoal_loss_weight=1.0, sample_noise=0.0, summary_mlp_dim=256),
    # Width 512 with 4 heads of 128: fewer, larger matmuls. On the 2-core CPU its train step reached
    # 0.61-0.66 of the jitted-matmul FLOP/s against 0.53 for width 384 with 6 heads of 64, measured
    # interleaved in the same runs (benchmarks/model.py).
    "small": dict(image_size=64, patch_size=8, width=512, depth=6, num_heads=4, head_dim=128, mlp_dim=2048,
                  expert_width=256, expert_depth=6, expert_num_heads=2, expert_mlp_dim=1024),
    # ~100M+ parameters: one GPU.
    "base": dict(image_size=64, patch_size=8, width=768, depth=12, num_heads=12, head_dim=64, mlp_dim=3072,
                 expert_width=512, expert_depth=12, expert_num_heads=8, expert_mlp_dim=2048, remat=True),
    # ~1B parameters: a pod (fsdp + tensor sharding).
    "large": dict(image_size=64, patch_size=8, width=2048, depth=18, num_heads=16, head_dim=128,
                  mlp_dim=8192, expert_width=1024, expert_depth=12, expert_num_heads=8,
                  expert_mlp_dim=4096, remat=True, dtype="bfloat16"),
}

# Batch sizes the presets were sized and benchmarked with (the trainer's configs may differ).
PRESET_BATCH_SIZE = {"tiny": 32, "small": 32, "base": 128, "large": 256}


def model_config(size: str = "tiny") -> ml_collections.ConfigDict:
    if size not in _PRESETS:
        raise ValueError(f"unknown model size {size!r}; expected one of {sorted(_PRESETS)}")
    config = ml_collections.ConfigDict(dict(
        size=size,
        # Data layout (must match config.data and the tokenizer).
        image_size=32,
        vocab_size=512,
        max_instruction_len=16,
        max_subtask_len=8,
        max_state_dim=16,
        max_action_dim=8,
        action_horizon=8,
        # Architecture.
        patch_size=8,
        width=64,
        depth=2,
        num_heads=2,
        head_dim=32,
        mlp_dim=256,
        expert_width=64,
        expert_depth=2,
        expert_num_heads=2,
        expert_mlp_dim=256,
        # Image tokens: 'patch' (linear patch embedding, ViT) or 'conv' (h2r/model/conv_stem.py).
        stem="patch",
        stem_channels=16,
        # Keypoint stem (h2r/model/keypoints.py): spatial-softmax keypoints per view, 0 = off.
        keypoints=0,
        keypoint_channels=16,
        keypoint_layers=1,           # hidden 3x3 convs before the keypoint conv (receptive field 3 + 2 per layer)
        keypoint_temperature=10.0,   # initial softmax sharpness (learned per channel)
        # The summary token and the subgoal head also read each channel's softmax within each of
        # W x W windows (KeypointStem.readout), 1 = whole image only. Must divide image_size.
        # W = 2 measured worse on tidy (0.289 against 0.410: BUILD_NOTES, "Learning", n7).
        keypoint_windows=1,
        # Three ways to keep two alike items apart, off by default; each measured on tidy against
        # 0.410 (BUILD_NOTES, "Learning", session 22, q2-q5), none adopted:
        # a learned logit per view, pixel and keypoint added before the softmax (KeypointStem), so
        # a channel can prefer one region, the nearer of two items (0.383);
        keypoint_position_prior=False,
        # patch tokens also read the keypoint stem's full-resolution features of their patch
        # (h2r/model/vla.py `patch_features`), one token per item (0.250);
        stem_patch_features=False,
        # the summary token and the subgoal head also read each channel's two strongest peaks
        # (keypoints.two_peaks), two positions instead of their midpoint (0.371).
        keypoint_peaks=False,
        # Observation-summary token (h2r/model/vla.py): hidden width of an MLP over all keypoints and
        # the proprio that adds one token to the prefix, 0 = off. Needs keypoints.
        summary_mlp_dim=0,
        # Action queries (h2r/model/vla.py): weight of their direct action regression, 0 = off.
        action_queries_weight=0.0,
        # Subgoal head (h2r/model/vla.py): weight of its hindsight-subgoal regression, 0 = off.
        subgoal_loss_weight=0.0,
        inference="flow",            # flow (the action expert) | queries (the action queries' regression)
        # Proprio input. Off: the policy sees images and language only, so it cannot time its
        # moves from its own joint angles instead of looking (BC's copycat shortcut).
        use_proprio=True,
        # Training/inference behaviour.
        flow_steps=10,               # Euler steps when sampling actions
        sample_noise=1.0,            # scale of the flow's starting noise at sampling (0 = deterministic)
        sample_candidates=1,         # > 1: draw this many chunks and act on their medoid (h2r/policy.py)
        subtask_loss_weight=1.0,     # the subtask head's weight in the total loss
        dtype="float32",             # activation/compute dtype; params stay float32
        remat=False,                 # rematerialize each block in the backward pass
    ))
    config.update(_PRESETS[size])
    return config
