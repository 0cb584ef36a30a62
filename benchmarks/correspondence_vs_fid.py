"""Is a run's attention correspondence related to its cross-reference FID? (docs/results.md)

Reads the table of the quality runs (docs/results/correspondence_vs_fid.csv: one row per
run, with the scores file and FID entry each number comes from) and prints Spearman's rank
correlation of correspondence (exact) with FID and KID, over all runs and within groups of
one budget and augmentation, and a Mann-Whitney test of the bar's-losses runs whose
attention found no correspondences (exact < 0.05) against the others.

    python benchmarks/correspondence_vs_fid.py [docs/results/correspondence_vs_fid.csv]
"""

from __future__ import annotations

import csv
import sys

import numpy as np
from scipy.stats import mannwhitneyu, spearmanr


def load(path: str) -> list[dict]:
    rows = list(csv.DictReader(open(path)))
    for row in rows:
        row["steps"] = int(row["steps"])
        for key in ("psnr", "fid", "kid_x1000", "corr_exact", "colour_shift"):
            row[key] = float(row[key])
    return rows


def main(path: str) -> None:
    rows = load(path)
    common = lambda r: r["steps"] == 3500 and r["keep_white"] == "0.5" and r["colour_shift"] == 1.0  # noqa: E731
    groups = {"all runs": rows, "3,500 steps, keep_white 0.5, shift 1.0": [r for r in rows if common(r)]}
    for loss in ("bar", "perc", "full"):
        groups[f"{loss}, 3,500 steps, keep_white 0.5, shift 1.0"] = [r for r in rows if common(r) and r["loss_set"] == loss]
    groups["bar + perc (no triplet loss), same"] = [r for r in rows if common(r) and r["loss_set"] != "full"]
    for name, group in groups.items():
        if len(group) < 4:
            continue
        exact = [r["corr_exact"] for r in group]
        fid, kid = (spearmanr(exact, [r[k] for r in group]) for k in ("fid", "kid_x1000"))
        print(f"{name:45s} n={len(group):2d}  FID rho {fid.statistic:+.2f} (p {fid.pvalue:.4f})  "
              f"KID rho {kid.statistic:+.2f} (p {kid.pvalue:.4f})")
    bar = [r for r in rows if common(r) and r["loss_set"] == "bar"]
    low, high = ([r["fid"] for r in bar if (r["corr_exact"] < 0.05) == flag] for flag in (True, False))
    test = mannwhitneyu(low, high, alternative="two-sided")
    print(f"bar's losses, same group: exact < 0.05: n={len(low)} FID mean {np.mean(low):.1f}; "
          f"the others: n={len(high)} FID mean {np.mean(high):.1f}; Mann-Whitney p {test.pvalue:.4f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/correspondence_vs_fid.csv")
