"""Paired seeds: is setting B better than setting A, over runs that differ only in it?

Each ``--pair`` names one run of A and one of B with the same seed, as
``FID_JSON:KEY,FID_JSON:KEY`` (the JSON files of benchmarks/fid_from_outputs.py and their
keys); ``--psnr`` adds each run's self-reference PSNR from a tools/score.py ``scores.json``
(same order as the pairs, ``A_SCORES,B_SCORES``). Prints each pair, the means and the paired
tests of B - A on FID (one-sided, "B lower": t-test and Wilcoxon signed-rank), and whether B's
FID varies less over the seeds (standard deviations, Pitman-Morgan test for paired variances).

    python benchmarks/paired_seeds.py \\
        --pair 'r/fid_s0.json:bar_s0,r/fid_s0.json:extra_s0' --pair 'r/fid_s1.json:bar_s1,r/fid_s1.json:extra_s1' \\
        --psnr 'r/bar_s0_scores.json,r/extra_s0_scores.json' --psnr 'r/bar_s1_scores.json,r/extra_s1_scores.json'
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def read_fid(spec: str) -> tuple[float, float]:
    """FID and KID x 1000 of ``FILE:KEY``."""
    path, sep, key = spec.rpartition(":")
    if not sep:
        raise SystemExit(f"--pair: expected FILE:KEY, got {spec!r}")
    with open(path) as f:
        results = json.load(f)
    if key not in results:
        raise SystemExit(f"--pair: {path} has no key {key!r} (keys: {', '.join(sorted(results))})")
    return float(results[key]["fid"]), float(results[key]["kid_x1000"])


def read_psnr(path: str) -> float:
    with open(path) as f:
        return float(json.load(f)["tasks"]["self_reference"]["model"]["psnr"])


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict:
    """Paired one-sided tests that ``b`` is lower than ``a`` (same seeds in the same order)."""
    from scipy import stats

    diff = b - a
    result = {"n": len(diff), "mean_diff": float(diff.mean()), "lower_in": int((diff < 0).sum())}
    if len(diff) >= 2:
        result["sd_diff"] = float(diff.std(ddof=1))
        result["t_p_one_sided"] = float(stats.ttest_rel(b, a, alternative="less").pvalue)
        result["wilcoxon_p_one_sided"] = float(stats.wilcoxon(diff, alternative="less").pvalue)
    return result


def spread_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Whether ``b`` varies less over the seeds than ``a``: the standard deviations and the
    Pitman-Morgan test for paired samples (var(a) = var(b) iff a + b and b - a are uncorrelated;
    one-sided: their correlation is negative, i.e. var(b) < var(a)). Needs three pairs."""
    from scipy import stats

    result = {"sd_a": float(a.std(ddof=1)), "sd_b": float(b.std(ddof=1))} if len(a) >= 2 else {}
    if len(a) >= 3:
        test = stats.pearsonr(a + b, b - a, alternative="less")
        result.update(pitman_morgan_r=float(test.statistic), p_one_sided_b_less_spread=float(test.pvalue))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True, help="FID_JSON:KEY of A, then of B (repeat per seed)")
    parser.add_argument("--psnr", action="append", default=[], help="scores.json of A, then of B (same order as --pair)")
    parser.add_argument("--out", default=None, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    if args.psnr and len(args.psnr) != len(args.pair):
        raise SystemExit(f"--psnr: give one per --pair ({len(args.pair)}), got {len(args.psnr)}")
    rows = []
    for i, pair in enumerate(args.pair):
        specs = pair.split(",")
        if len(specs) != 2:
            raise SystemExit(f"--pair: expected two FILE:KEY separated by a comma, got {pair!r}")
        (fid_a, kid_a), (fid_b, kid_b) = read_fid(specs[0]), read_fid(specs[1])
        row = {"runs": specs, "fid": [fid_a, fid_b], "kid_x1000": [kid_a, kid_b]}
        if args.psnr:
            row["scores"] = args.psnr[i].split(",")
            row["psnr"] = [read_psnr(p) for p in row["scores"]]
        rows.append(row)
    metrics = [m for m in ("fid", "kid_x1000", "psnr") if m in rows[0]]
    table = {m: np.array([r[m] for r in rows]) for m in metrics}
    summary = {"pairs": rows, "mean_a": {m: float(table[m][:, 0].mean()) for m in metrics},
               "mean_b": {m: float(table[m][:, 1].mean()) for m in metrics},
               "fid_b_minus_a": paired_tests(table["fid"][:, 0], table["fid"][:, 1]),
               "fid_spread": spread_test(table["fid"][:, 0], table["fid"][:, 1])}
    print("pair  " + "  ".join(f"{m + ' A':>12} {m + ' B':>12}" for m in metrics))
    for i, r in enumerate(rows):
        print(f"{i:4d}  " + "  ".join(f"{r[m][0]:12.2f} {r[m][1]:12.2f}" for m in metrics))
    print("mean  " + "  ".join(f"{summary['mean_a'][m]:12.2f} {summary['mean_b'][m]:12.2f}" for m in metrics))
    tests = summary["fid_b_minus_a"]
    print(f"FID B - A: mean {tests['mean_diff']:+.2f}, lower in {tests['lower_in']} of {tests['n']}"
          + (f", sd {tests['sd_diff']:.2f}, paired t one-sided p = {tests['t_p_one_sided']:.3f}, "
             f"Wilcoxon one-sided p = {tests['wilcoxon_p_one_sided']:.3f}" if "sd_diff" in tests else ""))
    spread = summary["fid_spread"]
    if "pitman_morgan_r" in spread:
        print(f"FID spread over seeds: sd A {spread['sd_a']:.2f}, sd B {spread['sd_b']:.2f}; Pitman-Morgan "
              f"r = {spread['pitman_morgan_r']:+.2f}, "
              f"one-sided p (B less spread) = {spread['p_one_sided_b_less_spread']:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
