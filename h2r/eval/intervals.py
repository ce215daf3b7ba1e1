"""Confidence intervals for success rates: Wilson (binomial) and bootstrap (any statistic).

One sample of episodes delegates to scipy.stats: the Wilson score interval is
`binomtest(...).proportion_ci`, the bootstrap is `scipy.stats.bootstrap`. The study report needs
a two-level bootstrap (resample training seeds, then each seed's episodes) that scipy does not
offer; `hierarchical_bootstrap` is it, and `percentile_interval` turns its replicates into an
interval; `rank_correlation_interval` is Spearman's rho (scipy) with a bootstrap over pairs.
This module fixes the conventions (95% by default, plain floats out, degenerate samples
handled) so every stage reports intervals the same way.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good coverage even at 0 or n successes)."""
    successes, n = int(successes), int(n)
    if n <= 0:
        raise ValueError(f"wilson_interval needs at least one trial, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes={successes} outside [0, n={n}]")
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_test(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> dict:
    """Exact McNemar test of two policies evaluated on the same episodes (0/1 outcomes each).

    Pairing removes the episodes' own difficulty: only the discordant episodes (one succeeds, the
    other fails) carry information, and under "no difference" each is a fair coin. Returns the
    counts `a_only`, `b_only` and the two-sided binomial `p`.
    """
    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_test needs two outcome vectors over the same episodes, got shapes "
                         f"{a.shape} and {b.shape}")
    if not np.all(np.isin(a, (0, 1))) or not np.all(np.isin(b, (0, 1))):
        raise ValueError("paired_test: outcomes must be 0 or 1")
    a_only, b_only = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    p = stats.binomtest(a_only, a_only + b_only).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    confidence: float = 0.95,
    num_resamples: int = 9999,
    seed: int = 0,
    method: str = "BCa",
) -> tuple[float, float]:
    """Bootstrap interval of `statistic` over the first axis of `values` (e.g. episodes).

    `statistic` must accept an `axis` keyword (numpy reductions do). A sample whose values are
    all equal has no spread to resample; its interval is the single point.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] < 2:
        raise ValueError(f"bootstrap_interval needs at least 2 values, got {values.shape[0]}")
    if np.all(values == values[0]):
        point = float(statistic(values, axis=0))
        return point, point
    result = stats.bootstrap(
        (values,), statistic, n_resamples=num_resamples, confidence_level=confidence,
        method=method, rng=np.random.default_rng(seed), vectorized=True, axis=0)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def resampled_means(values: np.ndarray, rng: np.random.Generator, samples: int) -> np.ndarray:
    """[samples] means of `values` resampled with replacement (one bootstrap level)."""
    idx = rng.integers(0, values.size, size=(samples, values.size))
    return values[idx].mean(axis=1)


def hierarchical_bootstrap(groups: Sequence[tuple[np.ndarray, np.ndarray | None]],
                           rng: np.random.Generator, samples: int) -> np.ndarray:
    """[samples] bootstrap replicates of mean over groups of (mean(a) - mean(b)).

    groups: for each group (a training seed), (outcomes with, outcomes without) for a paired
    difference, or (outcomes, None) for a plain mean. Groups are resampled, then the outcomes
    within each group, so both the between-seed spread and the finite number of episodes widen
    the interval (scipy.stats.bootstrap resamples one level only). Its replicates' variance is
    not the estimate's: the episode noise is counted about (3 - 2/k) times, the seed spread
    (k - 1)/k times (k groups; h2r/study/report/power.py derives it and sizes studies with it).
    """
    values = np.stack([resampled_means(a, rng, samples) - (0.0 if b is None else resampled_means(b, rng, samples))
                       for a, b in groups], axis=1)                       # [samples, groups]
    pick = rng.integers(0, len(groups), size=(samples, len(groups)))
    return np.take_along_axis(values, pick, axis=1).mean(axis=1)


def rank_correlation_interval(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, samples: int,
                              confidence: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """Spearman's rho of paired values (scipy.stats.spearmanr) and its percentile bootstrap
    interval over pairs. Resamples where x or y is constant have no rho and are left out;
    None for the rho when the data have none, for the interval when fewer than half the
    resamples have one (too few distinct pairs to say anything)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rho = float(stats.spearmanr(x, y).statistic) if x.size > 1 else float("nan")
    if not np.isfinite(rho):
        return None, None, None
    pick = rng.integers(0, x.size, size=(samples, x.size))
    # Spearman = Pearson of the ranks (ties averaged), one row per resample at once.
    rx, ry = (stats.rankdata(v[pick], axis=1) for v in (x, y))
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (rx * ry).sum(1) / np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    reps = reps[np.isfinite(reps)]
    if reps.size < samples / 2:
        return rho, None, None
    return (rho, *percentile_interval(reps, confidence))


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap replicates (percentile method)."""
    tail = round(50 * (1 - confidence), 9)  # percent in each tail; rounded: 2.5, not 2.500000000000002
    lo, hi = np.percentile(replicates, [tail, 100 - tail])
    return float(lo), float(hi)


# name -> interval of a 0/1 success vector; `h2r eval` picks one by name.
SUCCESS_INTERVALS = {
    "wilson": lambda successes, confidence: wilson_interval(
        int(np.sum(successes)), len(successes), confidence),
    "bootstrap": lambda successes, confidence: bootstrap_interval(
        successes, confidence=confidence, method="percentile"),
}


def success_interval(successes: Sequence[bool] | np.ndarray, method: str = "wilson",
                     confidence: float = 0.95) -> tuple[float, float]:
    """Interval of the success rate of a vector of per-episode 0/1 outcomes."""
    if method not in SUCCESS_INTERVALS:
        raise ValueError(f"unknown interval method {method!r}; expected one of {sorted(SUCCESS_INTERVALS)}")
    return SUCCESS_INTERVALS[method](np.asarray(successes, dtype=np.float64), confidence)
