"""Issue 12's statistics, on micro sizes and without training: the power the report states
holds for simulated studies, the episodes-per-cell formula gives the interval it promises,
the overlap-vs-gain correlation finds a constructed relation (and not a shuffled one), and
`h2r study report` recomputes every number from the cells' per-episode records."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from h2r import files
from h2r.errors import StudyError
from h2r.study import dag
from h2r.study.grid import base_config
from h2r.study.report import power, stats, write_report
from h2r.study.run import load_study_config
from test_study import MICRO, ROOT

LEVEL = "1.0"


def _row(level, target, weight, seed, successes, overlap=None) -> dict:
    """One eval cell as h2r.study.report.collect gives it (progress = success: 0/1 outcomes)."""
    successes = np.asarray(successes, np.float64)
    return dict(level=level, target=target, human_weight=weight, seed=seed, successes=successes,
                progress=successes, episodes=successes.size, overlap=overlap or {},
                success_rate=float(successes.mean()), mean_progress=float(successes.mean()))


def simulated_study(rng, gain, p0, seeds, targets, episodes, seed_sd=0.0) -> dict:
    """One level's cells: robot-only success p0, with human data p0 + gain + N(0, seed_sd) per
    seed (the between-seed spread of the gain), `episodes` Bernoulli episodes per cell."""
    config = base_config()
    config.seeds, config.targets = tuple(range(seeds)), tuple(f"t{i}" for i in range(targets))
    config.eval.episodes = episodes
    rows = []
    for target in config.targets:
        for seed in config.seeds:
            p1 = float(np.clip(p0 + gain + rng.normal(0.0, seed_sd), 0.0, 1.0))
            for weight, p in ((0.0, p0), (0.5, p1)):
                rows.append(_row(LEVEL, target, weight, seed, rng.random(episodes) < p))
    return dict(config=config, rows=rows, levels=[LEVEL], targets=list(config.targets), weights=[0.0, 0.5])


def _simulate(gain, p0, seeds, targets, episodes, studies, rng, seed_sd=0.0, samples=500):
    """The report's gain row averaged over targets, for `studies` simulated studies."""
    rows = []
    for i in range(studies):
        numbers = stats.compute(simulated_study(rng, gain, p0, seeds, targets, episodes, seed_sd), samples, i)
        rows.append(next(g for g in numbers["gain"] if g["target"] == stats.ALL_TARGETS))
    return rows


# -------------------------------------------------------------------------- power (item 3)

@pytest.mark.parametrize("targets, gain", [(3, "mde"), (1, 0.25)])
def test_a_known_gain_is_detected_at_the_stated_rate_and_no_gain_is_not(targets, gain):
    """200 simulated studies (3 seeds, 40 episodes per cell, robot-only success 0.3) through the
    report's own statistics: a true gain is detected (interval above 0) at the rate the power
    module states for it, and a true gain of 0 is flagged in at most ~5% of studies."""
    rng = np.random.default_rng(12)
    seeds, episodes, p0, studies = 3, 40, 0.3, 200
    design = [(p0, episodes, episodes, seeds)] * targets
    mde = power.minimum_detectable_gain(design)
    gain = mde if gain == "mde" else gain
    stated = power.detection_probability(gain, design)
    assert stated == pytest.approx(0.8, abs=1e-6) if gain == mde else 0.75 < stated < 0.95
    detected = _simulate(gain, p0, seeds, targets, episodes, studies, rng)
    rate = np.mean([g["lo"] > 0 for g in detected])
    # 200 studies: the rate's standard error is ~0.03; the normal approximation adds ~0.05.
    assert abs(rate - stated) < 0.1, (rate, stated)
    # The MDE each report states (estimated from its own cells) is the design's, give or take.
    assert np.mean([g["mde"] for g in detected]) == pytest.approx(mde, rel=0.15)
    null = _simulate(0.0, p0, seeds, targets, episodes, studies, rng)
    flagged = np.mean([g["excludes_zero"] for g in null])
    assert flagged <= 0.05, flagged
    assert flagged <= power.false_positive_rate(design) + 0.03


def test_power_grows_with_episodes_and_seeds_and_shrinks_with_seed_spread():
    base = [(0.3, 40, 40, 3)]
    mde = power.minimum_detectable_gain(base)
    assert power.minimum_detectable_gain([(0.3, 160, 160, 3)]) < mde / 1.8          # ~1/sqrt(episodes)
    assert power.minimum_detectable_gain([(0.3, 40, 40, 6)]) < mde
    assert power.minimum_detectable_gain(base, tau2=0.1 ** 2) > mde
    assert power.minimum_detectable_gain(base * 3) < mde                              # pooled over targets
    assert power.minimum_detectable_gain([(0.99, 4, 4, 1)]) is None                 # no room above the baseline
    assert 0 < power.minimum_detectable_gain([(0.0, 40, 40, 3)]) < mde              # a zero baseline: a gain still


def test_episodes_per_cell_for_a_plus_minus_0_10_interval():
    """The formula, and the promise: with that many episodes the report's interval of the gain
    averaged over 3 targets (3 seeds, success 0.5, no seed spread) is +-0.10 wide on average."""
    n = power.episodes_for_half_width(seeds=3, targets=3)
    assert n == 50
    assert power.episodes_for_half_width(seeds=3, targets=1) == 150
    assert power.episodes_for_half_width(seeds=5, targets=3) < n
    assert power.episodes_for_half_width(seeds=3, targets=3, between_seed_sd=0.1) > n
    assert power.episodes_for_half_width(seeds=3, targets=3, between_seed_sd=0.3) is None  # seeds, not episodes
    rows = _simulate(0.0, 0.5, 3, 3, n, 60, np.random.default_rng(3))
    half_width = np.mean([(g["hi"] - g["lo"]) / 2 for g in rows])
    assert 0.085 < half_width <= 0.105, half_width


# -------------------------------------------------------------------------- overlap vs gain (item 4c)

def _overlap_cells(rng, shuffle: bool) -> dict:
    """54 cells (6 levels x 3 targets x 3 seeds) whose gains differ; retrieval above chance
    rises with the gain and the probe's accuracy falls with it (or both shuffled over cells)."""
    levels, targets, episodes = [f"l{i}" for i in range(6)], ["a", "b", "c"], 40
    cells = [(lv, t, s) for lv in levels for t in targets for s in range(3)]
    wins = rng.permutation(len(cells)) % episodes        # distinct-ish gains: k/40 over a zero baseline
    measures = [dict(phase_retrieval={"above_chance": 0.1 + 0.02 * k}, probe_accuracy={"accuracy": 0.95 - 0.01 * k})
                for k in wins]
    if shuffle:
        measures = [measures[i] for i in rng.permutation(len(measures))]
    rows = []
    for (lv, t, s), k, measure in zip(cells, wins, measures):
        rows.append(_row(lv, t, 0.0, s, np.zeros(episodes)))
        rows.append(_row(lv, t, 0.5, s, np.arange(episodes) < k,
                         {"probe_accuracy.accuracy": measure["probe_accuracy"]["accuracy"],
                          "phase_retrieval.above_chance": measure["phase_retrieval"]["above_chance"]}))
    return dict(rows=rows, levels=levels, targets=targets, weights=[0.0, 0.5])


def test_overlap_that_tracks_the_gain_is_found_and_a_shuffled_one_is_not():
    rng = np.random.default_rng(4)
    found = {(o["metric"], o["gain"]): o for o in stats.overlap_vs_gain(_overlap_cells(rng, False), rng, 1000)}
    retrieval, probe = found[("phase_retrieval.above_chance", "success")], found[("probe_accuracy.accuracy", "success")]
    assert retrieval["cells"] == 54
    assert retrieval["rho"] > 0.99 and retrieval["lo"] > 0.9 and retrieval["excludes_zero"]
    assert probe["rho"] < -0.99 and probe["hi"] < -0.9 and probe["excludes_zero"]
    shuffled = stats.overlap_vs_gain(_overlap_cells(rng, True), rng, 1000)
    for o in shuffled:
        assert o["lo"] < 0 < o["hi"] and not o["excludes_zero"], o
        assert abs(o["rho"]) < 0.35


# -------------------------------------------------------------------------- item 6: from the cells alone

def _episodes(rng, rate: float, count: int, first_seed: int) -> list[dict]:
    """`h2r eval`'s episodes_detail: per episode its seed, success and the phases it reached."""
    out = []
    for i in range(count):
        success = bool(rng.random() < rate)
        max_phase = 4 if success else int(rng.integers(0, 4))
        out.append(dict(index=i, scene="s", task_family="f", variant=0, seed=first_seed + i, success=success,
                        length=int(rng.integers(5, 40)), max_phase=max_phase, num_phases=4,
                        stage="success" if success else f"phase {max_phase}"))
    return out


def _eval_json(detail: list[dict]) -> dict:
    successes = [int(e["success"]) for e in detail]
    return dict(success_rate=float(np.mean(successes)), ci95=[0.0, 1.0], ci_method="wilson",
                episodes=len(detail), successes=successes, max_phase=[e["max_phase"] for e in detail],
                num_phases=[e["num_phases"] for e in detail], episodes_detail=detail)


@pytest.fixture(scope="module")
def hand_made_study(tmp_path_factory):
    """The micro study's plan with 3 seeds and 2 targets, every eval cell's result written by
    hand (no training): with human data helps at level 1.0, not at level 0."""
    config = load_study_config(MICRO)
    config.seeds, config.targets, config.eval.episodes = (0, 1, 2), ("sort_eggs", "tidy_new_scenes"), 24
    study_dir = str(tmp_path_factory.mktemp("study") / "S")
    cells = dag.plan(config, ROOT)
    dag.save_study(study_dir, config, cells)
    rng = np.random.default_rng(6)
    for cell in (c for c in cells if c.kind == "eval"):
        p = cell.params
        rate = 0.3 + (0.3 if p["human_weight"] > 0 and p["level"] == "1.0" else 0.0) + rng.normal(0, 0.05)
        result = dict(id=cell.id, kind="eval", params=p, eval=_eval_json(_episodes(rng, rate, 24, 10_000)),
                      eval_target_robot=None, embeddings=None, tsne=None)
        if p["human_weight"] == 0:
            result["eval_target_robot"] = _eval_json(_episodes(rng, 0.6, 24, 20_000))
        else:
            result["embeddings"] = dict(probe_accuracy=dict(accuracy=float(rng.uniform(0.5, 1))),
                                        phase_retrieval=dict(above_chance=float(rng.uniform(0, 1))))
        result["eval"]["success_rate"] = 0.999  # a stored rate the report must not use
        files.write_json(dag.result_path(study_dir, cell.id), result)
    write_report(study_dir)
    return study_dir, config, cells


def _recomputed(study_dir: str, cells) -> dict:
    """Per (level, target, weight, seed): the 0/1 successes, straight from episodes_detail."""
    out = {}
    for cell in (c for c in cells if c.kind == "eval"):
        detail = json.load(open(dag.result_path(study_dir, cell.id)))["eval"]["episodes_detail"]
        p = cell.params
        out[(p["level"], p["target"], p["human_weight"], p["seed"])] = np.array([float(e["success"]) for e in detail])
    return out


def _pairs(outcomes, level, target, weight, seeds) -> list:
    """Per seed: (successes with human data, without)."""
    return [(outcomes[(level, target, weight, s)], outcomes[(level, target, 0.0, s)]) for s in seeds]


def _mde_by_scan(designs, tau2: float) -> float | None:
    """The MDE's definition solved by brute force: the smallest gain on a fine grid whose
    detection probability (module power's normal model, written out again here) reaches 0.8."""
    from scipy.stats import norm

    k = designs[0][3]
    deltas = np.linspace(1e-6, 1 - max(d[0] for d in designs), 200_001)
    true = boot = 0.0
    for p0, n0, n1, _ in designs:
        sigma2 = p0 * (1 - p0) / n0 + (p0 + deltas) * (1 - p0 - deltas) / n1
        true = true + (tau2 + sigma2) / k
        boot = boot + ((k - 1) / k * tau2 + (3 - 2 / k) * sigma2) / k
    t = len(designs)
    detect = norm.cdf((deltas - norm.ppf(0.975) * np.sqrt(boot) / t) / (np.sqrt(true) / t))
    return float(deltas[np.argmax(detect >= 0.8)]) if (detect >= 0.8).any() else None


def test_report_numbers_are_recomputed_from_the_episode_records(hand_made_study):
    study_dir, config, cells = hand_made_study
    results = json.load(open(os.path.join(study_dir, "report", "results.json")))
    outcomes = _recomputed(study_dir, cells)
    seeds = config.seeds
    for c in results["cells"]:  # every cell's rate comes from its episodes, not the stored 0.999
        key = (c["level"], c["target"], c["human_weight"], c["seed"])
        assert c["success_rate"] == pytest.approx(outcomes[key].mean())
    for s in results["success"]:
        expected = np.mean([outcomes[(s["level"], s["target"], s["human_weight"], seed)].mean() for seed in seeds])
        assert s["mean"] == pytest.approx(expected)
    gains = {}
    for g in results["gain"]:
        targets = config.targets if g["target"] == stats.ALL_TARGETS else (g["target"],)
        pairs = {t: _pairs(outcomes, g["level"], t, g["human_weight"], seeds) for t in targets}
        gains[(g["level"], g["target"])] = g
        assert g["mean"] == pytest.approx(np.mean([a.mean() - b.mean() for ps in pairs.values() for a, b in ps]))
        assert g["excludes_zero"] == (g["lo"] > 0 or g["hi"] < 0)
        # The power: tau2 pooled over the level's targets (method of moments), the baseline and
        # the episodes of the targets this row averages.
        per_target_tau2 = []
        for t in config.targets:
            ps = _pairs(outcomes, g["level"], t, g["human_weight"], seeds)
            d = [a.mean() - b.mean() for a, b in ps]
            noise = np.mean([a.mean() * (1 - a.mean()) / (a.size - 1) + b.mean() * (1 - b.mean()) / (b.size - 1)
                             for a, b in ps])
            per_target_tau2.append(np.var(d, ddof=1) - noise)
        tau2 = max(0.0, float(np.mean(per_target_tau2)))
        designs = [(np.concatenate([b for _, b in ps]).mean(), 24, 24, len(seeds)) for ps in pairs.values()]
        assert g["between_seed_sd"] == pytest.approx(np.sqrt(tau2))
        assert g["baseline"] == pytest.approx(np.mean([d[0] for d in designs]))
        assert g["mde"] == pytest.approx(_mde_by_scan(designs, tau2), abs=2e-5)
    # The constructed effect is there and the report says so.
    assert gains[("1.0", stats.ALL_TARGETS)]["excludes_zero"] and gains[("1.0", stats.ALL_TARGETS)]["lo"] > 0
    assert results["power"]["episodes_for_half_width_0_10"] == dict(
        seeds=3, targets=2, all_targets=power.episodes_for_half_width(3, 2), one_target=150, episodes_per_cell=24)

    # results.csv carries the same power numbers and the overlap-vs-gain rows.
    rows = list(csv.DictReader(open(os.path.join(study_dir, "report", "results.csv"))))
    for g in results["gain"]:
        mine = {r["metric"]: r["value"] for r in rows if r["table"] == "gain_power"
                and (r["level"], r["target"]) == (g["level"], g["target"])}
        assert float(mine["mde"]) == pytest.approx(g["mde"]) and mine["excludes_zero"] == str(int(g["excludes_zero"]))
    overlap_gain = [r for r in rows if r["table"] == "overlap_gain"]
    assert len(overlap_gain) == len(results["overlap_gain"]) == 4  # 2 measures x (success, progress)
    assert all(o["cells"] == 2 * 3 * 2 for o in results["overlap_gain"])

    # index.html: the power line under each gain, the marks, the overlap-vs-gain table.
    page = open(os.path.join(study_dir, "report", "index.html")).read()
    assert page.count("power: detects ≥") == len(results["gain"])
    assert '<span class="sig">' in page and "Does overlap predict the gain?" in page
    assert f"{gains[('1.0', stats.ALL_TARGETS)]['mde']:.3f}" in page


def test_report_refuses_a_cell_whose_records_disagree(hand_made_study, tmp_path):
    import shutil

    study_dir = shutil.copytree(hand_made_study[0], tmp_path / "S")
    cell = next(c for c in hand_made_study[2] if c.kind == "eval")
    result = json.load(open(dag.result_path(study_dir, cell.id)))
    result["eval"]["successes"][0] = 1 - result["eval"]["successes"][0]
    files.write_json(dag.result_path(study_dir, cell.id), result)
    with pytest.raises(StudyError, match="episodes_detail and successes disagree"):
        write_report(study_dir)
