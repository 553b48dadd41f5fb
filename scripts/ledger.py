"""The claims ledger: one table of the paper's claims with what this suite measured.

    python scripts/ledger.py [experiments] [out=experiments/README.md]

Reads every `<experiments>/<study>/verdicts.csv` that `aggregate.py` wrote beside the study's
`results.csv`, adds the claims that compare runs of two studies (CROSS_CLAIMS, e.g. Mean Teacher
on one labelled frame per video against full supervision), and writes the table between the
`<!-- ledger -->` markers of `out` (the rest of the file is left as it is). A study counts as run
at the current scale when its folder has a `verdicts.csv` (older, superseded folders have only
`results.csv`); claims whose study has not been run are listed as "not run".
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from aggregate import read_results_csv
from study_stats import Run, Verdict, judge, overall

START, END = "<!-- ledger -->", "<!-- /ledger -->"

#: claims judged on runs of two studies (or two cells of one): (study folder, its swept key, its
#: value[, {other key: value it must have, "" for not set}]) for each side; paired by seed
CROSS_CLAIMS = [
    {
        "claim": "Mean Teacher (1 label / video) as good as full supervision",
        "paper": "within 0.13 mIoU of every frame labelled (main paper)",
        "metric": "mIoU",
        "within": 1.0,
        "a": ("study_methods", "method", "mean_teacher"),
        "b": ("bench", "data.labels", "all"),
        "command": "python src/train.py -m experiment=study_methods; python src/train.py -m experiment=bench_sanity",
    },
    {
        "claim": "CamVid bench: Mean Teacher (1 label / video) as good as every frame labelled (SSLTM)",
        "paper": "within 0.13 mIoU of every frame labelled (main paper)",
        "metric": "mIoU",
        "within": 1.0,
        "a": ("camvid_bench", "method", "mean_teacher", {"model": "ssltm", "data.labels": "one_per_video"}),
        "b": ("camvid_bench", "data.labels", "all", {"model": "ssltm", "method": "supervised"}),
        "command": "bash experiments/camvid_bench/run.sh ../shared/camvid",
    },
]

#: the studies of the ledger in the order of its rows (folders under experiments/), with their
#: commands, or (command, words added to each claim) where one study's claims are measured again
STUDIES = {
    "bench": "python src/train.py -m experiment=bench_sanity",
    "bench/more_videos": ("python src/train.py -m experiment=bench_videos; python src/train.py -m experiment=bench_videos "
                          "method=mean_teacher data.source.train_videos=1024"),
    "study_gcc": "python src/train.py -m experiment=study_gcc",
    "study_reference_distance": "python src/train.py -m experiment=study_reference_distance",
    "study_stt": "python src/train.py -m experiment=study_stt",
    "study_temporal": "python src/train.py -m experiment=study_temporal",
    # the same claims under Mean Teacher (issue 17): per-frame + MT runs against study_methods' SSLTM + MT
    "study_temporal/mean_teacher": (
        "python src/train.py -m experiment=study_temporal method=mean_teacher model=ssltm_per_frame; "
        "python scripts/aggregate.py <that sweep> <study_methods sweeps> where.method=mean_teacher "
        "default.model=ssltm out=experiments/study_temporal/mean_teacher",
        "(under Mean Teacher)",
    ),
    "study_context": "python src/train.py -m experiment=study_context",
    "study_methods": "python src/train.py -m experiment=study_methods",
    # why FixMatch loses there (issue 28): its CutMix and its threshold, one at a time
    "study_methods/causes": ("bash experiments/study_methods/run_causes.sh; python scripts/aggregate.py "
                             "experiments/study_methods/results.csv experiments/study_methods/causes/results.csv "
                             "outputs/study_methods_causes/*_seeds_* "
                             "study=experiments/study_methods/causes/study.yaml default.method.cutmix_p=default "
                             "default.method.confidence_threshold=default default.experiment=study_methods "
                             "default.callbacks.rich_progress_bar=null "
                             "out=experiments/study_methods/causes"),
    "study_label_ratio": "python src/train.py -m experiment=study_label_ratio",
    "study_backbones": "python src/train.py -m experiment=study_backbones",
    "camvid": "bash experiments/camvid/run.sh ../shared/camvid trainer=gpu",
    "camvid_bench": "bash experiments/camvid_bench/run.sh ../shared/camvid",
    # the bench's first design, whose instrument checks failed (experiments/camvid_bench/README.md)
    "camvid_bench/first_design_96x128": (
        "bash experiments/camvid_bench/run.sh ../shared/camvid all data.source.video_len=10",
        "(first design, 10-frame videos: its instrument checks fail, so not decided)",
    ),
    # the paper's ablations on the bench (issue 28): its cells with one thing changed, paired by seed
    **{f"camvid_ablations/{study}": f"bash experiments/camvid_ablations/run.sh ../shared/camvid {seeds} "
       f"{group}; bash experiments/camvid_ablations/aggregate.sh {study}"
       for study, seeds, group in [("stt", "1,2,3,4,5", "stt_off"), ("context", "1,2,3,4,5", "architecture"),
                                   ("gcc", "1,2,3", "gcc"), ("reference_distance", "1,2,3", "distance"),
                                   ("methods", "1,2,3,4,5", "methods")]},
}


def read_verdicts(path: Path) -> list[Verdict]:
    rows = list(csv.DictReader(path.open()))
    return [Verdict(r["claim"], r["paper"], r["metric"], r["comparison"], float(r["mean"]), float(r["ci95"]),
                    int(r["seeds"]), r["verdict"], r["paired"] == "True", float(r.get("margin") or 0.0)) for r in rows]


def read_runs(results_csv: Path, key: str, where: dict[str, str] | None = None) -> list[Run]:
    """The finished runs of a study's results.csv, keyed by `key` and the seed; with `where`, only
    those whose overrides have those values ("" for a key not set)."""
    return [Run({key: job.overrides.get(key, ""), "seed": job.overrides.get("seed", "")}, job.values)
            for job in read_results_csv(results_csv) if job.status == "ok"
            and all(job.overrides.get(k, "") == v for k, v in (where or {}).items())]


def cross_verdicts(root: Path, claim: dict) -> list[Verdict]:
    """Judge a claim whose two sides come from two studies' results.csv."""
    sides = []
    for side in ("a", "b"):
        study, key, value, *where = claim[side]
        path = root / study / "results.csv"
        if not (path.is_file() and (root / study / "verdicts.csv").is_file()):  # not rerun at this scale
            return []
        runs = read_runs(path, key, where[0] if where else None)
        sides += [Run({"side": side, "seed": r.seed}, r.values) for r in runs if r.setting[key] == value]
    if not sides or {r.setting["side"] for r in sides} != {"a", "b"}:
        return []
    spec = {k: claim[k] for k in ("claim", "paper", "metric", "within") if k in claim} | {"better": "a", "than": "b"}
    verdicts = judge(spec, sides, "side")
    for v in verdicts:
        v.comparison = f"{claim['a'][2]} - {claim['b'][2]}"
    return verdicts


def bench_of(study: str) -> str:
    """Which bench a study's verdicts come from: real video (CamVid) or the synthetic set."""
    if study.startswith(("camvid_bench", "camvid_ablations")):
        return "CamVid, ImageNet encoder"
    if study.startswith("camvid"):
        return "CamVid, random weights"
    return "synthetic, random weights"


def rows(root: Path) -> list[str]:
    lines = ["| bench | claim | what the paper says | what we measured (points, mean ± 95% CI) | verdict | command |",
             "|---|---|---|---|---|---|"]
    for study, entry in STUDIES.items():
        command, suffix = entry if isinstance(entry, tuple) else (entry, "")
        path = root / study / "verdicts.csv"
        if not path.is_file():
            lines.append(f"| {bench_of(study)} | {study}: not run at this scale yet | | | | `{command}` |")
            continue
        by_claim: dict[str, list[Verdict]] = {}
        for v in read_verdicts(path):
            by_claim.setdefault(v.claim, []).append(v)
        for claim, verdicts in by_claim.items():
            measured = "; ".join(f"{v.metric} {v.measured()}" for v in verdicts)
            verdict = overall(verdicts) if len(verdicts) > 1 else verdicts[0].verdict_text()
            lines.append(f"| {bench_of(study)} | {f'{claim} {suffix}'.strip()} | {verdicts[0].paper} | {measured} | **{verdict}** "
                         f"| `{command}` |")
    for claim in CROSS_CLAIMS:
        verdicts = cross_verdicts(root, claim)
        bench = bench_of(claim["a"][0])
        if not verdicts:
            lines.append(f"| {bench} | {claim['claim']}: not run at this scale yet | {claim['paper']} | | | `{claim['command']}` |")
            continue
        (v,) = verdicts
        lines.append(f"| {bench} | {v.claim} | {v.paper} | {v.metric} {v.measured()} | **{v.verdict_text()}** "
                     f"| `{claim['command']}` |")
    return lines


def write_ledger(root: Path, out: Path) -> str:
    table = "\n".join(rows(root))
    text = out.read_text() if out.is_file() else f"# Experiments\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    out.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return table


def main(argv: list[str]) -> int:
    args = [a for a in argv if "=" not in a]
    options = dict(a.split("=", 1) for a in argv if "=" in a)
    root = Path(args[0] if args else "experiments")
    if not root.is_dir():
        print(f"error: no experiments folder at {root}", file=sys.stderr)
        return 1
    out = Path(options.get("out", root / "README.md"))
    print(write_ledger(root, out))
    print(f"wrote the ledger into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
