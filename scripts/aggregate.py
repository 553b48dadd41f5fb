"""Aggregate a Hydra multirun into a table and a plot.

    python scripts/aggregate.py <multirun folder or results.csv> [...] [out=<folder>] [study=<experiment>]
                                [where.<key>=<value> ...] [default.<key>=<value> ...]

Reads `multirun.yaml` (what the sweep asked for) and every job folder's `.hydra/overrides.yaml`,
`metrics.json` and `method_stats.json`. Several folders of one study (a sweep spread over
sessions or machines, e.g. `seed=1,2,3` in one and `seed=4,5` in another) are read as one: their
jobs together, their grids together. `where.<key>=<value>` keeps only the jobs (and the asked-for
settings) with that value; `default.<key>=<value>` gives that value to the jobs whose overrides do
not set the key (the config's default), so that runs of two studies can be compared, e.g. the
SSLTM + Mean Teacher runs of study_methods (no `model` override) against per-frame runs:
    aggregate.py <per-frame MT sweep> <study_methods sweep> where.method=mean_teacher default.model=ssltm
A committed `results.csv` (this script's own output) stands for the runs it lists, so a study
whose run folders were deleted after aggregation can take more seeds in a later session:
    aggregate.py experiments/study_gcc/results.csv <the new sweep> default.experiment=study_gcc out=experiments/study_gcc
(its runs bring their values, not a grid: the settings asked for come from the multirun folders;
a run it lists that is read again, from its folder or another results.csv, counts once).
`study=<experiment>` judges the runs by the `study:` node (title, plot, claims) of
`conf/experiment/<experiment>.yaml` instead of the one the runs were launched with: claims added
to a config after its runs, or runs launched from another experiment with overrides.
Writes into `out` (default: the first multirun folder):
    results.csv   one row per job: the swept values, status, metrics, wall time, disk bytes
    results.md    one row per setting (runs that differ only in `seed` are averaged: mean ± the
                  half-width of its 95% t-interval, n runs; and the standard deviation of mIoU
                  over the seeds with its 95% chi-square interval), the verdict on each claim of the
                  study's `study.expect` (study_stats.py), then the jobs that failed (no
                  metrics.json) and the settings never run
    verdicts.csv  one row per claim comparison: measured difference, interval, seeds, verdict
    results.png   the study's plot, as the experiment's `study:` node describes it (x, hue, kind),
                  error bars the 95% intervals
Runs that failed or are missing are listed, never dropped silently.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from study_stats import RAW_UNITS, Run, Verdict, judge, overall, sd_interval, t_interval

from ssltm.runs.sweep import ERROR_FILE

METRICS = ("mIoU", "mVC8", "mVC16")
STATS = RAW_UNITS  # from method_stats.json: wall_seconds, disk_bytes, parameters
SUBSET_METRICS = ("noisy/mIoU", "clean/mIoU")


@dataclass
class Job:
    folder: Path
    overrides: dict[str, str]
    name: str = ""  # the job folder's name, or <multirun>/<job> when several multiruns are read
    metrics: dict | None = None
    stats: dict | None = None
    status: str = "ok"
    values: dict[str, float] = field(default_factory=dict)
    from_csv: bool = False  # read back from a results.csv, not from its folder


def parse_override(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.lstrip("+~"), normalise(value)


def normalise(value: str) -> str:
    """One spelling per value: Hydra writes a swept `true` back as `True`."""
    value = value.strip()
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return str(loaded).lower() if isinstance(loaded, bool) else value


def sweep_values(value: str) -> list[str]:
    """`1,2,3` or `range(1,4)` or `choice(a,b)` -> the listed values (a plain value -> itself)."""
    value = value.strip()
    for fn in ("choice(", "range("):
        if value.startswith(fn) and value.endswith(")"):
            inner = value[len(fn) : -1]
            if fn == "range(":
                bounds = [int(v) for v in inner.split(",")]
                return [str(v) for v in range(*bounds)]
            value = inner
    parts, depth, current = [], 0, ""
    for ch in value:  # split on commas outside brackets: [1,2],[3,4] is two values
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [normalise(p) for p in [*parts, current]]


def expected_settings(multirun: dict) -> list[dict[str, str]]:
    """Every combination a grid sweep asked for: command-line sweeps and `hydra.sweeper.params`."""
    hydra = multirun.get("hydra", {})
    if "basic_sweeper" not in str((hydra.get("sweeper") or {}).get("_target_", "basic_sweeper")):
        return []  # Optuna and other samplers choose their trials: there is no grid to miss
    swept: dict[str, list[str]] = {}
    params = (hydra.get("sweeper") or {}).get("params") or {}
    for key, value in params.items():
        swept[key] = sweep_values(str(value))
    for text in (hydra.get("overrides") or {}).get("task", []):
        key, value = parse_override(text)
        values = sweep_values(value)
        if len(values) > 1 or key in swept:
            swept[key] = values
    keys = list(swept)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(swept[k] for k in keys))]


def _read_json(path: Path) -> dict | None:
    """A job's JSON record; None when absent. A half-written or damaged one (a job killed while
    writing it) counts as absent, and one line names it, so the job is listed as failed."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        print(f"warning: {path} is unreadable or half-written ({err}); its job counts as failed", file=sys.stderr)
        return None
    if not isinstance(record, dict):
        print(f"warning: {path} holds no JSON object; its job counts as failed", file=sys.stderr)
        return None
    return record


def _error_of(job: Job) -> str:
    """The one-line error a failed job recorded (src/train.py in a multirun), if any."""
    path = job.folder / ERROR_FILE
    return f" ({path.read_text().strip()})" if path.is_file() else ""


def read_jobs(root: Path) -> list[Job]:
    jobs = []
    for overrides_file in sorted(root.glob("*/.hydra/overrides.yaml"), key=lambda p: _job_order(p.parents[1].name)):
        folder = overrides_file.parents[1]
        overrides = dict(parse_override(o) for o in yaml.safe_load(overrides_file.read_text()) or [])
        job = Job(folder, overrides, folder.name)
        job.metrics = _read_json(folder / "metrics.json")
        if job.metrics is not None:
            job.values = {  # null in metrics.json: not defined (e.g. no mVC_16 window) -> NaN
                k: math.nan if job.metrics[k] is None else job.metrics[k]
                for k in (*METRICS, *SUBSET_METRICS) if k in job.metrics
            }
            per_class = job.metrics.get("per_class_iou")
            if isinstance(per_class, dict):  # class name -> IoU (null: absent from the split)
                job.values.update({f"iou/{name}": math.nan if v is None else v for name, v in per_class.items()})
        else:
            job.status = "failed"
        job.stats = _read_json(folder / "method_stats.json")
        if job.stats is not None:
            job.values["wall_seconds"] = job.stats.get("wall_seconds", math.nan)
            disk = job.stats.get("disk_bytes")
            job.values["disk_bytes"] = disk.get("total", math.nan) if isinstance(disk, dict) else (disk or math.nan)
            job.values["parameters"] = job.stats.get("parameters", math.nan)
        jobs.append(job)
    return jobs


CONF_EXPERIMENTS = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def read_study(name: str) -> dict:
    """The `study:` node of an experiment config, by name (conf/experiment/<name>.yaml) or path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONF_EXPERIMENTS / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"study={name}: no experiment config at {path}")
    study = (yaml.safe_load(path.read_text()) or {}).get("study")
    if not isinstance(study, dict):
        raise ValueError(f"study={name}: {path} has no study: node")
    return study


def read_once(jobs: list[Job]) -> list[Job]:
    """A run that a results.csv lists and that is read again, from its folder (not deleted yet) or
    from a second results.csv that lists it too, counts once: the last read. A run is known by its
    folder name (`<multirun>/<job>`) and its overrides (those both reads hold must agree); two
    folders of one name stay two runs."""
    kept: list[Job] = []
    for job in jobs:
        same = next((i for i, k in enumerate(kept) if k.name == job.name and (k.from_csv or job.from_csv)
                     and all(k.overrides[key] == job.overrides[key] for key in k.overrides.keys() & job.overrides.keys())),
                    None)
        if same is None:
            kept.append(job)
        else:
            kept[same] = job
    return kept


def read_results_csv(path: Path) -> list[Job]:
    """The jobs listed in a results.csv written by `write_csv`: the columns before `status` are
    the swept keys (empty: the job did not set it), the ones after it the values."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if "status" not in columns or "folder" not in columns:
            raise ValueError(f"{path}: not a results.csv of scripts/aggregate.py (no status or folder column)")
        keys = columns[: columns.index("status")]
        values = [c for c in columns[columns.index("status") + 1 :] if c != "folder"]
        jobs = []
        for row in reader:
            job = Job(path, {k: normalise(row[k]) for k in keys if row[k] != ""}, row["folder"], status=row["status"],
                      from_csv=True)
            try:
                job.values = {k: _number(row[k]) for k in values if row[k] not in ("", None)}
            except ValueError:
                bad = next(k for k in values if row[k] not in ("", None) and not _is_float(row[k]))
                raise ValueError(f"{path}: run {row['folder']}: {bad} is {row[bad]!r}, not a number") from None
            jobs.append(job)
    return jobs


def _number(text: str) -> int | float:
    """An integer stays one (bytes, parameters), so that a CSV read back is written unchanged."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _job_order(name: str):
    return (0, int(name)) if name.isdigit() else (1, name)


def swept_keys(jobs: list[Job], expected: list[dict[str, str]]) -> list[str]:
    """Override keys whose value differs between jobs (or that the sweep lists), in sweep order."""
    keys = list(expected[0]) if expected else []
    for job in jobs:
        for key in job.overrides:
            if key not in keys and len({j.overrides.get(key) for j in jobs}) > 1:
                keys.append(key)
    return keys


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (NaN with one run)."""
    mean, half, _ = t_interval(values)
    return mean, half


def group(jobs: list[Job], keys: list[str]) -> dict[tuple, list[Job]]:
    """Jobs by setting: the swept values except the seed."""
    setting_keys = [k for k in keys if k != "seed"]
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(job.overrides.get(k, "") for k in setting_keys), []).append(job)
    return groups


def fmt(mean: float, half: float, scale: float = 100.0, digits: int = 2) -> str:
    if mean != mean:
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * half:.{digits}f}" if half == half else "")


def fmt_sd(sd: float, low: float, high: float, scale: float = 100.0) -> str:
    return "-" if sd != sd else f"{scale * sd:.2f} ({scale * low:.2f}-{scale * high:.2f})"


def write_csv(path: Path, jobs: list[Job], keys: list[str]) -> None:
    classes = list(dict.fromkeys(k for j in jobs for k in j.values if k.startswith("iou/")))
    values = (*METRICS, *SUBSET_METRICS, *STATS, *classes)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, "status", *values, "folder"])
        for job in jobs:
            row = [job.overrides.get(k, "") for k in keys] + [job.status]
            row += [job.values.get(m, "") for m in values]
            writer.writerow([*row, job.name])


def markdown(jobs: list[Job], keys: list[str], expected: list[dict[str, str]], title: str,
             verdicts: list[Verdict] = ()) -> str:
    setting_keys = [k for k in keys if k != "seed"]
    ok = [j for j in jobs if j.status == "ok"]
    subsets = [m for m in SUBSET_METRICS if any(m in j.values for j in ok)]
    header = [*setting_keys, "runs", "mIoU", "mIoU sd (95% CI)", "mVC_8", "mVC_16", *subsets, "wall (min)",
              "disk (MB)", "params (M)"]
    lines = [f"## {title}", "", "Each cell: mean ± half-width of the 95% t-interval over the runs (seeds); "
             "mIoU sd: the standard deviation over the seeds, with its 95% chi-square interval.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, members in group(ok, keys).items():
        cells = [*setting, str(len(members))]
        for metric in (*METRICS, *subsets):
            cells.append(fmt(*mean_ci([j.values.get(metric, math.nan) for j in members])))
            if metric == "mIoU":
                cells.append(fmt_sd(*sd_interval([j.values.get(metric, math.nan) for j in members])))
        cells.append(fmt(*mean_ci([j.values.get("wall_seconds", math.nan) for j in members]), 1 / 60, 1))
        cells.append(fmt(*mean_ci([j.values.get("disk_bytes", math.nan) for j in members]), 1e-6, 1))
        params = [j.values.get("parameters", math.nan) for j in members]
        cells.append(fmt(mean_ci(params)[0], math.nan, 1e-6, 2))  # the same for every seed
        lines.append("| " + " | ".join(cells) + " |")
    if verdicts:
        lines += ["", "### Verdicts", "", "| claim | paper | measured (points, 95% CI) | verdict | per seed (paired) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {v.claim} | {v.paper} | {v.metric} {v.measured()} | **{v.verdict_text()}** | {v.per_seed_text()} |"
                  for v in verdicts]
    failed = [j for j in jobs if j.status != "ok"]
    if failed:
        lines += ["", f"Failed runs ({len(failed)}, no metrics.json):", ""]
        lines += [f"- `{j.name}`: " + " ".join(f"{k}={j.overrides.get(k, '')}" for k in keys) + _error_of(j) for j in failed]
    missing = [e for e in expected if not any(all(j.overrides.get(k) == v for k, v in e.items()) for j in jobs)]
    if missing:
        lines += ["", f"Missing runs ({len(missing)}, asked for by the sweep, no job folder):", ""]
        lines += ["- " + " ".join(f"{k}={v}" for k, v in m.items()) for m in missing]
    return "\n".join(lines) + "\n"


def study_verdicts(jobs: list[Job], study: dict) -> list[Verdict]:
    """The verdicts on the claims of `study.expect`, from the finished runs."""
    runs = [Run(j.overrides, j.values) for j in jobs if j.status == "ok"]
    return [v for claim in study.get("expect") or [] for v in judge(claim, runs, study.get("x"))]


def write_verdicts(path: Path, verdicts: list[Verdict]) -> None:
    """verdicts.csv: one row per comparison, and the claim's overall verdict (`best` claims have
    one comparison per rival)."""
    columns = ["claim", "paper", "metric", "comparison", "mean", "ci95", "seeds", "paired", "verdict", "claim_verdict",
               "margin"]
    by_claim: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_claim.setdefault(v.claim, []).append(v)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for v in verdicts:
            writer.writerow([v.claim, v.paper, v.metric, v.comparison, f"{v.mean:.4f}", f"{v.half_width:.4f}",
                             v.seeds, v.paired, v.verdict, overall(by_claim[v.claim]), f"{v.margin:g}"])


def plot(path: Path, jobs: list[Job], keys: list[str], study: dict, title: str) -> Path | None:
    """The study's figure: y metrics against `study.x`, one line (kind=line) or bar group
    (kind=bar) per value of `study.hue`; error bars are the 95% intervals over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [j for j in jobs if j.status == "ok"]
    if not ok:
        return None
    x_key = study.get("x") or next((k for k in keys if k != "seed"), None)
    hue_key = study.get("hue")
    metrics = list(study.get("metrics") or ["mIoU"])
    if x_key is None:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    hues = sorted({j.overrides.get(hue_key, "") for j in ok}) if hue_key else [""]
    xs = _sorted_values({j.overrides.get(x_key, "") for j in ok})
    for ax, metric in zip(axes[0], metrics):
        for h_index, hue in enumerate(hues):
            points = []
            for x in xs:
                members = [j for j in ok if j.overrides.get(x_key, "") == x and (not hue_key or j.overrides.get(hue_key, "") == hue)]
                points.append(mean_ci([j.values.get(metric, math.nan) for j in members]))
            means = [100 * m for m, _ in points]
            errors = [100 * h if h == h else 0.0 for _, h in points]
            label = f"{hue_key.split('.')[-1]}={hue}" if hue_key else None
            if study.get("kind", "line") == "bar":
                width = 0.8 / len(hues)
                positions = [i + (h_index - (len(hues) - 1) / 2) * width for i in range(len(xs))]
                ax.bar(positions, means, width, yerr=errors, label=label, capsize=3)
                ax.set_xticks(range(len(xs)), xs)
            else:
                ax.errorbar(_numeric(xs), means, yerr=errors, marker="o", capsize=3, label=label)
        ax.set_xlabel(study.get("x_label") or x_key)
        ax.set_ylabel(metric.replace("mVC", "mVC_") + " (%)")
        ax.grid(alpha=0.3)
        if hue_key:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _sorted_values(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _numeric(xs: list[str]) -> list:
    try:
        return [float(x) for x in xs]
    except ValueError:
        return list(range(len(xs)))


def in_grid_order(jobs: list[Job], multirun: dict) -> list[Job]:
    """The jobs sorted (stably) by the order of their values in the study's grid
    (`hydra.sweeper.params`), so the table lists the settings as the config does, whichever
    multirun folder came first."""
    params = ((multirun.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    order = {key: sweep_values(str(value)) for key, value in params.items()}

    def position(job: Job) -> tuple:
        return tuple(order[k].index(job.overrides[k]) if job.overrides.get(k) in order[k] else len(order[k])
                     for k in order)

    return sorted(jobs, key=position)


def aggregate(roots: Path | list[Path], out: Path | None = None, where: dict[str, str] | None = None,
              defaults: dict[str, str] | None = None, study: dict | None = None) -> dict:
    """Aggregate the multirun(s) in `roots` as one study; returns the paths written and the job
    counts. `where`: keep the jobs and asked-for settings with these values; `defaults`: values of
    keys that a job's overrides do not set; `study`: the study node to judge and plot by (default:
    the one in the multirun.yaml files)."""
    roots = [Path(r) for r in (roots if isinstance(roots, list) else [roots])]
    where = {k: normalise(str(v)) for k, v in (where or {}).items()}
    defaults = {k: normalise(str(v)) for k, v in (defaults or {}).items()}

    def kept(setting: dict[str, str], asked: bool = False) -> bool:
        """A job must have the `where` values; an asked-for setting must not contradict them (a
        sweep that fixed the value on its command line does not list it)."""
        return all(setting.get(k) == v or (asked and k not in setting) for k, v in where.items())

    multiruns, expected, jobs = [], [], []
    for root in roots:
        if root.suffix == ".csv" and root.is_file():  # runs aggregated before: their values, no grid
            found = [job for job in read_results_csv(root) if kept({**defaults, **job.overrides})]
            for job in found:
                job.overrides = {**defaults, **job.overrides}
            jobs += found
            multiruns.append({})
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"no multirun folder or results.csv at {root}")
        multirun_file = root / "multirun.yaml"
        multiruns.append(yaml.safe_load(multirun_file.read_text()) if multirun_file.is_file() else {})
        asked = [{**defaults, **e} if defaults else e for e in expected_settings(multiruns[-1])]
        expected += [e for e in asked if e not in expected and kept(e, asked=True)]
        found = read_jobs(root)
        for job in found:
            job.overrides = {**defaults, **job.overrides}
        found = [job for job in found if kept(job.overrides)]
        if len(roots) > 1:
            for job in found:
                job.name = f"{root.name}/{job.name}"
        if not found and not multiruns[-1]:
            raise FileNotFoundError(f"{root}: no job folders (*/.hydra/overrides.yaml) and no multirun.yaml")
        jobs += found
    jobs = read_once(jobs)
    out = Path(out or roots[0])
    out.mkdir(parents=True, exist_ok=True)
    keys = swept_keys(jobs, expected)
    # a default that every job shares (default.experiment=... for runs read back from a results.csv) is no column
    keys = [k for k in keys if not (k in defaults and len({j.overrides.get(k) for j in jobs}) == 1)]
    multirun = next((m for m in multiruns if isinstance(m.get("study"), dict)), multiruns[0])
    if study is None:
        study = (multirun.get("study") or {}) if isinstance(multirun.get("study"), dict) else {}
    title = study.get("title") or multirun.get("task_name") or roots[0].name
    jobs = in_grid_order(jobs, multirun)
    verdicts = study_verdicts(jobs, study)
    write_csv(out / "results.csv", jobs, keys)
    (out / "results.md").write_text(markdown(jobs, keys, expected, title, verdicts))
    if verdicts:
        write_verdicts(out / "verdicts.csv", verdicts)
    png = plot(out / "results.png", jobs, keys, study, title)
    return {"csv": out / "results.csv", "md": out / "results.md", "png": png, "verdicts": verdicts,
            "ok": sum(j.status == "ok" for j in jobs), "failed": sum(j.status != "ok" for j in jobs)}


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    options = dict(a.split("=", 1) for a in argv if "=" in a)
    bad = [k for k in options if k not in ("out", "study") and not k.startswith(("where.", "default."))]
    if bad:
        print(f"error: unknown option {bad[0]}= (out=, study=, where.<key>=, default.<key>=)", file=sys.stderr)
        return 2
    where = {k.removeprefix("where."): v for k, v in options.items() if k.startswith("where.")}
    defaults = {k.removeprefix("default."): v for k, v in options.items() if k.startswith("default.")}
    try:
        study = read_study(options["study"]) if "study" in options else None
        written = aggregate([Path(a) for a in argv if "=" not in a], options.get("out"), where, defaults, study)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(Path(written["md"]).read_text())
    print(f"{written['ok']} runs, {written['failed']} failed; wrote {written['csv']}, {written['md']}"
          + (f", {written['png']}" if written["png"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
