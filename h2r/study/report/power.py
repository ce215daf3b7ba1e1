"""The study's statistical power: the smallest gain from human data each point of the emergence
curve could have detected, and how many evaluation episodes a study needs for a given interval.

Why a normal approximation and not a simulation: it is closed form (instant, deterministic, the
same numbers in results.json, results.csv and index.html, and usable before a study runs to size
it), and tests/test_study_power.py checks it against the real thing: simulated studies put
through the report's own hierarchical bootstrap are detected at the stated rate.

The model of one gain estimate (one level, one target, one human weight): k training seeds,
each evaluated with and without human data on n1 and n0 episodes. The per-seed gain is
d_s = p1_s_hat - p0_s_hat, the reported gain G is the mean of d_s over seeds, and

    sigma2 = p0 (1 - p0) / n0 + p1 (1 - p1) / n1     episode (binomial) variance of one d_s
    tau2                                              between-seed variance of the true d_s
    Var(G)           = (tau2 + sigma2) / k                                    (what G really does)
    Var_bootstrap(G) = ((k - 1) / k * tau2 + (3 - 2 / k) * sigma2) / k    (what the interval uses)

The second line is the expected variance of `intervals.hierarchical_bootstrap`'s replicates
(derived and checked by simulation): resampling k seeds shrinks the seed part by (k - 1) / k,
while the episode noise is counted 3 - 2/k times: (k - 1) / k inside the observed spread of
the d_s, and 2 - 1/k more by the within-seed resampling, which a seed picked twice reuses
(its episode noise doubles). For k = 3 the bootstrap's episode variance is 7/3 of the real one, so
its intervals are conservative when seeds agree; when seeds disagree (tau2 large) they are too
narrow. Both effects are accounted for here, so the stated numbers describe the report's
actual interval, not an ideal one.

A point is "detected" when its 95% interval excludes 0: G > z_c * SE_bootstrap. With G normal
around the true gain delta with SE_true, detection probability is
Phi((delta - z_c * SE_bootstrap) / SE_true), and the minimum detectable effect (MDE) at power
0.8 solves delta = z_c * SE_bootstrap(delta) + z_p * SE_true(delta), z_c = 1.96, z_p = 0.84;
p1 = p0 + delta, so the variances depend on delta too. The gain averaged over T targets (the
curve's "all" line) averages independent per-target estimates: its variances are the sum of
the per-target variances over T^2. The binomial normal approximation is poor near p = 0 or 1
with few episodes: at a robot-only rate of 0 it errs on the safe side (simulated, 3 seeds x 20
episodes: detected 99% of the time at the stated 80%); tests/test_study_power.py checks it at
a robot-only rate of 0.3.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95   # the report's intervals
POWER = 0.8         # the detection probability the MDE is stated at


def _z(probability: float) -> float:
    return NormalDist().inv_cdf(probability)


def _z_confidence(confidence: float) -> float:
    return _z(1 - (1 - confidence) / 2)  # two-sided


# One target's design: (baseline rate p0, episodes per cell without, with, seeds).
Design = tuple[float, float, float, int]


def _binomial(p0: float, p1: float, n0: float, n1: float) -> float:
    """Episode variance of one seed's gain estimate p1_hat - p0_hat."""
    return p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1


def true_variance(sigma2: float, tau2: float, seeds: int) -> float:
    """Var of the mean over seeds of the per-seed gains."""
    return (tau2 + sigma2) / seeds


def bootstrap_variance(sigma2: float, tau2: float, seeds: int) -> float:
    """Expected variance of `intervals.hierarchical_bootstrap`'s replicates (module docstring)."""
    k = seeds
    return ((k - 1) / k * tau2 + (3 - 2 / k) * sigma2) / k


def _standard_errors(delta: float, designs: Sequence[Design], tau2: float) -> tuple[float, float]:
    """(SE_true, SE_bootstrap) of the gain averaged over `designs` (targets) at true gain delta."""
    true = boot = 0.0
    for p0, n0, n1, k in designs:
        sigma2 = _binomial(p0, min(p0 + delta, 1.0), n0, n1)
        true += true_variance(sigma2, tau2, k)
        boot += bootstrap_variance(sigma2, tau2, k)
    t = len(designs)
    return math.sqrt(true) / t, math.sqrt(boot) / t


def detection_probability(delta: float, designs: Sequence[Design], tau2: float = 0.0,
                          confidence: float = CONFIDENCE) -> float:
    """Probability that the report's interval lies above 0 when the true gain is delta > 0.
    At delta = 0: the chance of a false positive above 0 (double it for either side)."""
    se_true, se_boot = _standard_errors(delta, designs, tau2)
    if se_true == 0:
        return float(delta > 0)
    return NormalDist().cdf((delta - _z_confidence(confidence) * se_boot) / se_true)


def false_positive_rate(designs: Sequence[Design], tau2: float = 0.0, confidence: float = CONFIDENCE) -> float:
    """Chance that the interval excludes 0 (either side) when there is no gain at all."""
    return 2 * detection_probability(0.0, designs, tau2, confidence)


def minimum_detectable_gain(designs: Sequence[Design], tau2: float = 0.0, confidence: float = CONFIDENCE,
                            power: float = POWER) -> float | None:
    """The smallest true gain detected with probability `power`; None when even the largest
    possible gain (up to success 1) is not. `designs`: one (p0, n0, n1, seeds) per target."""
    z_c, z_p = _z_confidence(confidence), _z(power)

    def shortfall(delta):  # < 0 below the MDE, > 0 above; convex in delta, so one root
        se_true, se_boot = _standard_errors(delta, designs, tau2)
        return delta - z_c * se_boot - z_p * se_true

    ceiling = 1.0 - max(p0 for p0, *_ in designs)
    floor = 1e-12  # not 0: with p0 = 0 and tau2 = 0 the shortfall is 0 there, the MDE is not
    if ceiling <= floor or shortfall(ceiling) < 0:
        return None
    if shortfall(floor) >= 0:
        return floor
    lo, hi = floor, ceiling  # bisection (no scipy import: `h2r study status` prints sizes)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if shortfall(mid) >= 0 else (mid, hi)
    return hi


def between_seed_variance(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """Method-of-moments estimate of tau2 from one target's per-seed (with, without) 0/1
    outcomes: the spread of the per-seed gains minus what their episodes alone explain. May be
    negative (pool before clipping); None with fewer than 2 seeds or 2 episodes per cell."""
    if len(pairs) < 2 or min(min(a.size, b.size) for a, b in pairs) < 2:
        return None
    gains = np.array([a.mean() - b.mean() for a, b in pairs])
    # p(1-p)/(n-1) is the unbiased estimate of a rate's variance from n 0/1 outcomes.
    episode = np.mean([a.mean() * (1 - a.mean()) / (a.size - 1) + b.mean() * (1 - b.mean()) / (b.size - 1)
                       for a, b in pairs])
    return float(np.var(gains, ddof=1) - episode)


def pooled_between_seed_variance(per_target: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]]) -> float:
    """tau2 of one (level, human weight), pooled over its targets (3 seeds alone say little),
    clipped at 0; 0 when no target has 2 seeds."""
    estimates = [v for v in map(between_seed_variance, per_target) if v is not None]
    return max(0.0, float(np.mean(estimates))) if estimates else 0.0


def design_of(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> Design:
    """One target's observed design: baseline rate over all its robot-only episodes, mean
    episodes per cell with and without human data, and seeds."""
    without = np.concatenate([b for _, b in pairs])
    return (float(without.mean()), float(np.mean([b.size for _, b in pairs])),
            float(np.mean([a.size for a, _ in pairs])), len(pairs))


def episodes_for_half_width(seeds: int, targets: int = 1, half_width: float = 0.10, p: float = 0.5,
                            between_seed_sd: float = 0.0, confidence: float = CONFIDENCE) -> int | None:
    """Evaluation episodes per cell for the report's 95% interval of a gain averaged over
    `targets` targets (1: one target's gain) to be at most +-half_width, at success rate p in
    both arms (0.5: the worst case) and a between-seed sd of the per-seed gains. None when the
    seeds' spread alone makes the interval wider (more seeds needed, not more episodes).

        z^2 * Var_bootstrap / T <= h^2 with sigma2 = 2 p (1 - p) / n
        =>  n >= (3 - 2/k) * 2 p (1 - p) / (k T (h / z)^2 - (k - 1) / k * tau^2)
    """
    k, z = seeds, _z_confidence(confidence)
    room = k * targets * (half_width / z) ** 2 - (k - 1) / k * between_seed_sd ** 2
    if room <= 0:
        return None
    return math.ceil((3 - 2 / k) * 2 * p * (1 - p) / room - 1e-9)


def sizing_line(seeds: int, targets: int, episodes: int, half_width: float = 0.10) -> str:
    """One line for `h2r study status` and the report: the episodes per cell a +-half_width
    interval needs at a few between-seed spreads, beside what the study uses."""
    def need(sd, t):
        n = episodes_for_half_width(seeds, t, half_width, between_seed_sd=sd)
        return "more seeds needed" if n is None else str(n)

    spreads = ", ".join(f"{need(sd, targets)} (seed sd {sd:g})" for sd in (0.0, 0.05, 0.1))
    return (f"episodes per cell for a 95% interval of +-{half_width:g} on the gain averaged over "
            f"{targets} target(s), {seeds} seeds, success 0.5: {spreads}; one target alone: "
            f"{need(0.0, 1)} (seed sd 0); this study: {episodes}")
