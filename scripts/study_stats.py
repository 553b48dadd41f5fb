"""Confidence intervals and verdicts for a study's claims (used by `aggregate.py` and `ledger.py`).

A study config lists the paper's expectations under `study.expect`; each is judged on the runs of
the multirun, seed by seed:

    study:
      x: model.gcc.update
      expect:
        - claim: mse above ema          # a short name, the ledger's row
          paper: MSE update above EMA for every K (supp. Fig. 1)
          metric: mIoU                  # a key of metrics.json
          better: mse                   # value of `key` (default: study.x) ...
          than: ema                     # ... against this one: difference better - than
          where: {model.gcc.k: "3"}     # optional: only the runs with these values
          by_at_least: 0.0              # optional margin in points (mIoU 0..100)
        - {claim: K=3 best, metric: mIoU, key: model.gcc.k, best: "3"}
        - {claim: rises with distance, metric: mIoU, key: data.clip.eval_distance, increasing: true}
        - {claim: MT faster, metric: wall_seconds, key: method, better: mean_teacher, than: iterative,
           lower_is_better: true}
        - {claim: MT as good as all labels, key: data.labels, better: one_per_video, than: all, within: 1.0}
        - {claim: gain largest on noisy frames, metric: noisy/mIoU, minus_metric: clean/mIoU,
           key: model.context, better: rfce, than: qfce}

Kinds of claim:
- `better` / `than`: paired by seed (runs with the same seed share their data draws), the 95%
  t-interval of the per-seed differences; unpaired (Welch) when fewer than 2 seeds pair up.
- `best`: the value beats every other value of `key` (each a `better` / `than` claim).
- `increasing`: the per-seed least-squares slope of the metric against the numeric `key`.
- `within` (with `better` / `than`): the two are equal up to `within` points (the paper's "Mean
  Teacher comes within 0.13% of full supervision").
- `minus_metric` (with `better` / `than`): the gain on `metric` minus the gain on `minus_metric`,
  seed by seed (a difference of differences: "RFCE's gain over QFCE is larger on the noisy frames
  than on the clean ones").

Metrics of metrics.json (fractions) are compared in points (x100); `wall_seconds`, `disk_bytes`
and `parameters` in their own units, with `lower_is_better: true` where less is better.

Verdict: **agrees** when the interval lies above 0 (and the mean clears `by_at_least`; for
`within`: inside ±within), **opposite** when it lies below 0 (`within`: entirely outside
±within), else **not resolved**, reported with the smallest difference the study could have
resolved (the interval's half-width).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scipy import stats as _stats

LEVEL = 0.95  # confidence level of every interval


def t_interval(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, int]:
    """(mean, half-width of the two-sided t-interval, n) of the finite values; half-width NaN
    with fewer than 2 values."""
    values = [v for v in values if v == v]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(_stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n), n


def sd_interval(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(sample standard deviation, low, high of its two-sided chi-square interval) of the finite
    values: how far apart seeds of one setting land, and how well that many seeds pin it down
    (5 seeds: 0.60x to 2.87x the sample value). NaN with fewer than 2 values."""
    values = [v for v in values if v == v]
    n = len(values)
    if n < 2:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    ss = sum((v - mean) ** 2 for v in values)
    low = math.sqrt(ss / float(_stats.chi2.ppf(0.5 + level / 2, n - 1)))
    high = math.sqrt(ss / float(_stats.chi2.ppf(0.5 - level / 2, n - 1)))
    return math.sqrt(ss / (n - 1)), low, high


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """(mean(a) - mean(b), half-width of Welch's t-interval); NaN half-width with < 2 runs a side."""
    ma, _, na = t_interval(a)
    mb, _, nb = t_interval(b)
    if na < 2 or nb < 2:
        return ma - mb, math.nan
    va = sum((x - ma) ** 2 for x in a if x == x) / (na - 1) / na
    vb = sum((x - mb) ** 2 for x in b if x == x) / (nb - 1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return ma - mb, 0.0
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return ma - mb, float(_stats.t.ppf(0.5 + level / 2, df)) * se


@dataclass
class Run:
    """One finished run: its swept values (strings, as Hydra wrote them) and its metrics."""

    setting: Mapping[str, str]
    values: Mapping[str, float]

    @property
    def seed(self) -> str:
        return self.setting.get("seed", "")


@dataclass
class Verdict:
    claim: str
    paper: str
    metric: str
    comparison: str  # what was measured, e.g. "mse - ema" or "slope per frame"
    mean: float  # in points (x100) for metrics in [0, 1], else in the metric's unit
    half_width: float  # 95% CI half-width, same unit
    seeds: int
    verdict: str  # agrees | opposite | not resolved | no runs
    paired: bool = True
    margin: float = 0.0  # by_at_least: the difference the claim asks for (points)
    per_seed: dict[str, float] = field(default_factory=dict)  # seed -> paired difference (paired only)

    def measured(self) -> str:
        if self.seeds == 0:
            return "no runs"
        scale, unit = DISPLAY_UNITS.get(self.metric, (1.0, ""))
        ci = f" ± {scale * self.half_width:.2f}" if self.half_width == self.half_width else ""
        note = "" if ci else " (no interval: 1 run)"
        kind = "paired" if self.paired else "unpaired"
        return f"{self.comparison}: {scale * self.mean:+.2f}{ci}{unit}{note} ({self.seeds} seeds, {kind})"

    def per_seed_text(self) -> str:
        """The paired differences seed by seed and their standard deviation (what sizes a study:
        5 seeds resolve about 1.2 sd, 15 seeds about 0.55 sd)."""
        if len(self.per_seed) < 2:
            return ""
        scale, unit = DISPLAY_UNITS.get(self.metric, (1.0, ""))
        values = [self.per_seed[s] for s in sorted(self.per_seed, key=_seed_order)]
        sd = sd_interval(values)[0]
        return ", ".join(f"{scale * v:+.2f}" for v in values) + f" (sd {scale * sd:.2f}{unit})"

    def verdict_text(self) -> str:
        if self.verdict == "not resolved" and self.margin and self.mean - self.half_width > 0:
            return f"not resolved (above 0, but below the +{self.margin:g} asked)"
        if self.verdict == "not resolved" and self.half_width == self.half_width:
            scale, unit = DISPLAY_UNITS.get(self.metric, (1.0, ""))
            return f"not resolved (could resolve ±{scale * self.half_width:.2f}{unit})"
        return self.verdict


#: metrics kept in their own units (not fractions in [0, 1])
RAW_UNITS = ("wall_seconds", "disk_bytes", "parameters")
#: how a raw-unit metric is shown in tables (factor, unit); verdicts.csv keeps the raw values
DISPLAY_UNITS = {"wall_seconds": (1 / 60, " min"), "disk_bytes": (1e-6, " MB"), "parameters": (1e-6, "M")}


def _scaled(value: float, metric: str) -> float:
    return value if metric in RAW_UNITS else 100.0 * value


def _select(runs: Sequence[Run], where: Mapping[str, object] | None) -> list[Run]:
    where = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (where or {}).items()}
    return [r for r in runs if all(r.setting.get(k) == v for k, v in where.items())]


def _decide(mean: float, half: float, margin: float = 0.0, within: float | None = None) -> str:
    if mean != mean:
        return "no runs"
    if half != half:
        return "not resolved"
    low, high = mean - half, mean + half
    if within is not None:  # equivalence: the whole interval inside ±within, or entirely outside
        if -within <= low and high <= within:
            return "agrees"
        return "opposite" if low > within or high < -within else "not resolved"
    if low > 0 and mean >= margin:
        return "agrees"
    if high < 0:
        return "opposite"
    return "not resolved"


def _minus(runs: Sequence[Run], metric: str, minus: str) -> list[Run]:
    """The runs with one more value, f"{metric} minus {minus}", in the two metrics' unit."""
    name = f"{metric} minus {minus}"
    return [Run(r.setting, {**r.values, name: r.values.get(metric, math.nan) - r.values.get(minus, math.nan)})
            for r in runs]


def _seed_order(seed: str) -> tuple[int, float | str]:
    return (0, float(seed), "") if seed.lstrip("-").replace(".", "", 1).isdigit() else (1, 0.0, seed)


def paired_differences(runs: Sequence[Run], key: str, better: str, than: str, metric: str) -> dict[str, float]:
    """seed -> metric(key=better) - metric(key=than) (points), for the seeds both sides finished."""
    a = {r.seed: _scaled(r.values.get(metric, math.nan), metric) for r in runs if r.setting.get(key) == better}
    b = {r.seed: _scaled(r.values.get(metric, math.nan), metric) for r in runs if r.setting.get(key) == than}
    return {s: a[s] - b[s] for s in a.keys() & b.keys() if a[s] == a[s] and b[s] == b[s]}


def difference(runs: Sequence[Run], key: str, better: str, than: str, metric: str
               ) -> tuple[float, float, int, dict[str, float]]:
    """Mean and CI half-width (points) of metric(key=better) - metric(key=than), paired by seed
    where at least 2 seeds pair up; also the number of seeds (pairs, or the smaller side) and the
    per-seed differences (empty when unpaired)."""
    pairs = paired_differences(runs, key, better, than, metric)
    if len(pairs) >= 2:
        mean, half, n = t_interval(pairs.values())
        return mean, half, n, pairs
    a = {r.seed: _scaled(r.values.get(metric, math.nan), metric) for r in runs if r.setting.get(key) == better}
    b = {r.seed: _scaled(r.values.get(metric, math.nan), metric) for r in runs if r.setting.get(key) == than}
    mean, half = welch_interval(list(a.values()), list(b.values()))
    return mean, half, min(len(a), len(b)), {}


def slope_interval(runs: Sequence[Run], key: str, metric: str) -> tuple[float, float, int]:
    """The least-squares slope (points per unit of `key`) of each seed's runs, then its t-interval."""
    by_seed: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        y = r.values.get(metric, math.nan)
        if y == y and key in r.setting:
            by_seed.setdefault(r.seed, []).append((float(r.setting[key]), _scaled(y, metric)))
    slopes = []
    for points in by_seed.values():
        if len({x for x, _ in points}) < 2:
            continue
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        sxx = sum((x - mx) ** 2 for x, _ in points)
        slopes.append(sum((x - mx) * (y - my) for x, y in points) / sxx)
    return t_interval(slopes)


def judge(claim: Mapping, runs: Sequence[Run], default_key: str | None) -> list[Verdict]:
    """The verdict(s) of one `study.expect` entry (one per comparison; `best` gives one per rival)."""
    name, paper = str(claim.get("claim", "")), str(claim.get("paper", ""))
    metric = str(claim.get("metric", "mIoU"))
    key = str(claim.get("key") or default_key or "")
    runs = _select(runs, claim.get("where"))
    if claim.get("minus_metric"):  # judge the gain on metric minus the gain on minus_metric
        minus = str(claim["minus_metric"])
        runs, metric = _minus(runs, metric, minus), f"{metric} minus {minus}"
    margin = float(claim.get("by_at_least", 0.0))
    within = float(claim["within"]) if claim.get("within") is not None else None
    sign = -1.0 if claim.get("lower_is_better") else 1.0  # judge "better" as a positive difference

    def compare(better: str, than: str) -> Verdict:
        mean, half, n, per_seed = difference(runs, key, better, than, metric)
        verdict = _decide(sign * mean, half, margin, within) if n else "no runs"
        return Verdict(name, paper, metric, f"{better} - {than}", mean, half, n, verdict, bool(per_seed), margin,
                       per_seed)

    if "better" in claim:
        return [compare(str(claim["better"]), str(claim["than"]))]
    if "best" in claim:
        best = str(claim["best"])
        rivals = sorted({r.setting.get(key) for r in runs} - {best, None})
        verdicts = [compare(best, rival) for rival in rivals]
        return verdicts or [Verdict(name, paper, metric, f"{best} - others", math.nan, math.nan, 0, "no runs")]
    if claim.get("increasing") is not None:
        mean, half, n = slope_interval(runs, key, metric)
        sign = 1.0 if claim["increasing"] else -1.0
        return [Verdict(name, paper, metric, f"slope per unit of {key.split('.')[-1]}", mean, half, n,
                        _decide(sign * mean, half) if n else "no runs")]
    raise ValueError(f"study.expect entry {name!r}: give better/than, best or increasing")


def overall(verdicts: Sequence[Verdict]) -> str:
    """One verdict for a claim judged by several comparisons (`best`): opposite if any rival is
    significantly better, agrees if every comparison agrees, else not resolved."""
    kinds = {v.verdict for v in verdicts}
    if "opposite" in kinds:
        return "opposite"
    if kinds == {"agrees"}:
        return "agrees"
    return "no runs" if kinds == {"no runs"} else "not resolved"
