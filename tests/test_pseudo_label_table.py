"""scripts/pseudo_label_table.py: per-class pseudo-label figures read back from the CSV logs."""

from __future__ import annotations

import csv

import pseudo_label_table


def write_log(folder, rows):
    (folder / "csv").mkdir(parents=True)
    columns = sorted({k for r in rows for k in r})
    with (folder / "csv" / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_the_table_averages_each_runs_last_epoch_and_names_the_empty_cell(tmp_path, capsys):
    cell = tmp_path / "mean_teacher"
    for seed, (cov, acc) in enumerate([(0.2, 0.5), (0.4, 0.7)]):
        write_log(cell / str(seed), [
            {"epoch": "0", "step": "9", "train/loss": "1.0"},  # a step row: no per-class figures
            {"epoch": "0", "step": "99", "train/pseudo_coverage/road": "0.9", "train/pseudo_accuracy/road": "1.0"},
            {"epoch": "1", "step": "199", "train/pseudo_coverage/road": str(cov), "train/pseudo_accuracy/road": str(acc),
             "train/pseudo_coverage/pole": "0.1"},
        ])
    names, means, used = pseudo_label_table.cell_table(cell)
    assert used == 2 and set(names) == {"road", "pole"}
    assert means["coverage"]["road"] == 30.0 and means["accuracy"]["road"] == 60.0
    assert means["coverage"]["pole"] == 10.0 and "pole" not in means["accuracy"]
    _, first, _ = pseudo_label_table.cell_table(cell, epoch="0")
    assert first["coverage"]["road"] == 90.0

    assert pseudo_label_table.main([str(cell)]) == 0
    out = capsys.readouterr().out
    assert "(2 runs, epoch last)" in out and "| coverage |" in out and "| - |" in out
    empty = tmp_path / "supervised"
    write_log(empty / "0", [{"epoch": "0", "step": "9", "train/loss": "1.0"}])
    assert pseudo_label_table.main([str(empty)]) == 2
    assert "no run with per-class pseudo-label figures" in capsys.readouterr().out
