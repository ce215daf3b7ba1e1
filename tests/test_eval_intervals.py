"""Intervals: they narrow as episodes grow and cover the true rate ~95% of the time."""
import numpy as np
import pytest

from h2r.eval import intervals


@pytest.mark.parametrize("method", ["wilson", "bootstrap"])
def test_interval_narrows_as_episodes_grow(method):
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 80, 320, 1280):
        successes = rng.random(n) < 0.4
        lo, hi = intervals.success_interval(successes, method)
        assert 0.0 <= lo <= successes.mean() <= hi <= 1.0
        widths.append(hi - lo)
    assert all(a > b for a, b in zip(widths, widths[1:])), widths
    assert widths[-1] < widths[0] / 4  # width shrinks like 1/sqrt(N): 64x episodes -> ~8x narrower


def test_wilson_covers_true_rate_about_95_percent():
    rng = np.random.default_rng(1)
    for true_rate, n in ((0.3, 50), (0.9, 100), (0.05, 200)):
        hits = 0
        experiments = 2000
        for successes in rng.binomial(n, true_rate, size=experiments):
            lo, hi = intervals.wilson_interval(successes, n)
            hits += lo <= true_rate <= hi
        assert 0.925 <= hits / experiments <= 0.975, (true_rate, n, hits / experiments)


def test_bootstrap_covers_true_rate_about_95_percent():
    rng = np.random.default_rng(2)
    true_rate, n, experiments = 0.3, 100, 300
    hits = 0
    for seed in range(experiments):
        successes = rng.random(n) < true_rate
        lo, hi = intervals.bootstrap_interval(successes, num_resamples=2000, seed=seed, method="percentile")
        hits += lo <= true_rate <= hi
    # 300 experiments: the coverage estimate has a standard error of ~1.3 points.
    assert 0.90 <= hits / experiments <= 0.985, hits / experiments


def test_degenerate_and_bad_inputs():
    assert intervals.wilson_interval(0, 10)[0] == 0.0
    assert intervals.wilson_interval(10, 10)[1] == 1.0
    assert intervals.wilson_interval(10, 10)[0] > 0.6
    assert intervals.bootstrap_interval(np.ones(8)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="n=0"):
        intervals.wilson_interval(0, 0)
    with pytest.raises(ValueError, match="unknown interval method"):
        intervals.success_interval([1, 0], "jackknife")


def test_paired_test_counts_discordant_episodes_only():
    a = np.array([1, 1, 0, 0, 1] * 20)
    b = np.array([1, 0, 0, 0, 1] * 20)          # a wins 20 episodes, b none
    result = intervals.paired_test(a, b)
    assert (result["a_only"], result["b_only"]) == (20, 0)
    assert result["p"] == pytest.approx(2 * 0.5 ** 20)   # two-sided: 20 heads of 20 fair coins
    same = intervals.paired_test(a, a)
    assert same == {"a_only": 0, "b_only": 0, "p": 1.0}
    balanced = intervals.paired_test([1, 0] * 10, [0, 1] * 10)
    assert balanced["p"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same episodes"):
        intervals.paired_test([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        intervals.paired_test([1, 2], [1, 0])
