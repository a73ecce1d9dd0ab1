"""Early warning of the Resolution-57 monitoring on synthetic series with known outcomes.

Each series is a quarterly indicator from a baseline towards a target 24 quarters later; its whole
path is simulated (trend plus a random walk plus measurement noise), the first ``observed`` quarters
are shown to the forecaster, and the truth is whether the simulated value at the deadline meets the
target. Three families: *on track* (trend 1.3-2x what is needed, little noise), *off track* (0.2-0.7x),
*noisy* (0.7-1.3x with a strong random walk: the hard cases). A warning is at_risk or off_track; the
hit rate is the share of series where "warned" equals "missed the target". The baseline in the same
run is the naive rule: last value below the straight path from baseline to target -> warning.
``forecast_off_track_only`` scores the forecast with only *off track* as a warning (at risk is not).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from triage.kpi.forecast import forecast, naive_status

FAMILIES = ("on_track", "off_track", "noisy")
QUARTERS_TO_DEADLINE = 24
BASE, TARGET = 10.0, 30.0


def _series(family: str, rng: random.Random, observed: int) -> tuple[list[float], list[float], bool]:
    need = (TARGET - BASE) / QUARTERS_TO_DEADLINE
    ratio, walk, noise = {
        "on_track": (rng.uniform(1.3, 2.0), 0.05, 0.2),
        "off_track": (rng.uniform(0.2, 0.7), 0.05, 0.2),
        "noisy": (rng.uniform(0.7, 1.3), 0.35, 0.6),
    }[family]
    level, values = BASE, []
    for _q in range(QUARTERS_TO_DEADLINE + 1):
        values.append(level + rng.gauss(0, noise))
        level += need * ratio + rng.gauss(0, walk)
    times = [2025 + q / 4 for q in range(QUARTERS_TO_DEADLINE + 1)]
    met = level - need * ratio >= TARGET  # the true level at the deadline (no measurement noise)
    return times[:observed], values[:observed], met


def _score(pairs: list[tuple[bool, bool]]) -> dict[str, float]:
    """(warned, missed) pairs -> hit rate, precision and recall of the warnings."""
    hits = sum(w == m for w, m in pairs)
    tp = sum(w and m for w, m in pairs)
    warned = sum(w for w, _ in pairs)
    missed = sum(m for _, m in pairs)
    return {
        "hit_rate": round(hits / len(pairs), 4),
        "precision": round(tp / warned, 4) if warned else 0.0,
        "recall": round(tp / missed, 4) if missed else 0.0,
    }


def run_once(seed: int, per_family: int, observed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    deadline = 2025 + QUARTERS_TO_DEADLINE / 4
    ours: list[tuple[bool, bool]] = []
    naive: list[tuple[bool, bool]] = []
    strict: list[tuple[bool, bool]] = []  # only off_track counts as a warning (at_risk does not)
    by_family: dict[str, dict[str, list[tuple[bool, bool]]]] = {f: {"ours": [], "naive": []} for f in FAMILIES}
    for family in FAMILIES:
        for _ in range(per_family):
            ts, vs, met = _series(family, rng, observed)
            f = forecast(ts, vs, deadline=deadline, target=TARGET, direction="higher")
            n = naive_status(2025.0, BASE, ts[-1], vs[-1], deadline=deadline, target=TARGET, direction="higher")
            pair_ours, pair_naive = (f.status != "on_track", not met), (n != "on_track", not met)
            ours.append(pair_ours)
            strict.append((f.status == "off_track", not met))
            naive.append(pair_naive)
            by_family[family]["ours"].append(pair_ours)
            by_family[family]["naive"].append(pair_naive)
    return {
        "ours": _score(ours),
        "naive": _score(naive),
        "strict": _score(strict),
        "families": {f: {k: _score(v)["hit_rate"] for k, v in d.items()} for f, d in by_family.items()},
        "missed_share": round(sum(m for _, m in ours) / len(ours), 4),
    }


def kpi_forecast(progress: Callable[[str], None], quick: bool = False) -> dict[str, Any]:
    repeats, per_family = (3, 100) if quick else (7, 400)
    out: dict[str, Any] = {
        "dataset": "synthetic quarterly series (known outcomes)",
        "repeats": repeats,
        "series_per_family": per_family,
        "observed_quarters": {},
    }
    for observed in (8, 12):
        runs, seconds = [], []
        for r in range(repeats):
            started = time.perf_counter()
            runs.append(run_once(1000 * observed + r, per_family, observed))
            seconds.append(time.perf_counter() - started)
        med = {
            who: {m: statistics.median(run[who][m] for run in runs) for m in ("hit_rate", "precision", "recall")}
            for who in ("ours", "strict", "naive")
        }
        fam = {
            f: {who: statistics.median(run["families"][f][who] for run in runs) for who in ("ours", "naive")}
            for f in FAMILIES
        }
        per_series_ms = 1000 * statistics.median(seconds) / (per_family * len(FAMILIES))
        out["observed_quarters"][str(observed)] = {
            "forecast": med["ours"],
            "forecast_off_track_only": med["strict"],
            "naive_baseline": med["naive"],
            "hit_rate_by_family": fam,
            "missed_share": statistics.median(run["missed_share"] for run in runs),
            "ms_per_series": round(per_series_ms, 3),
        }
        progress(
            f"kpi_forecast: {observed} quarters seen: hit rate {med['ours']['hit_rate']:.3f} "
            f"vs naive {med['naive']['hit_rate']:.3f}"
        )
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(kpi_forecast(print, quick=True), indent=2))
