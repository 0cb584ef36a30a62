"""benchmarks/paired_seeds.py: paired comparison of two settings over seeds."""

import json
import sys
from pathlib import Path

import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from paired_seeds import main  # noqa: E402

FID_A = [80.0, 84.0, 72.0]
FID_B = [77.0, 83.0, 74.0]


def _write(tmp_path):
    fid = {f"{name}_s{i}": {"fid": value, "kid_x1000": value / 5}
           for name, values in (("a", FID_A), ("b", FID_B)) for i, value in enumerate(values)}
    (tmp_path / "fid.json").write_text(json.dumps(fid))
    for name, base in (("a", 20.0), ("b", 21.0)):
        for i in range(3):
            scores = {"tasks": {"self_reference": {"model": {"psnr": base + i}}}}
            (tmp_path / f"{name}_s{i}.json").write_text(json.dumps(scores))
    return [arg for i in range(3) for arg in ("--pair", f"{tmp_path}/fid.json:a_s{i},{tmp_path}/fid.json:b_s{i}")]


def test_means_differences_and_tests(tmp_path, capsys):
    pairs = _write(tmp_path)
    psnr = [arg for i in range(3) for arg in ("--psnr", f"{tmp_path}/a_s{i}.json,{tmp_path}/b_s{i}.json")]
    summary = main(pairs + psnr + ["--out", str(tmp_path / "summary.json")])
    assert summary["mean_a"]["fid"] == pytest.approx(sum(FID_A) / 3)
    assert summary["mean_b"]["psnr"] == pytest.approx(22.0)
    assert summary["mean_b"]["kid_x1000"] == pytest.approx(sum(FID_B) / 15)
    tests = summary["fid_b_minus_a"]
    assert tests["mean_diff"] == pytest.approx((-3 - 1 + 2) / 3)
    assert tests["lower_in"] == 2 and tests["n"] == 3
    assert tests["t_p_one_sided"] == pytest.approx(stats.ttest_rel(FID_B, FID_A, alternative="less").pvalue)
    assert json.loads((tmp_path / "summary.json").read_text())["fid_b_minus_a"] == tests
    assert "lower in 2 of 3" in capsys.readouterr().out


def test_spread_is_compared_with_the_pitman_morgan_test(tmp_path, capsys):
    """B's FID varies less than A's: the test's correlation of sums and differences is negative,
    and equals var(b) - var(a) scaled (its sign flips when A and B swap)."""
    import numpy as np

    spread = main(_write(tmp_path))["fid_spread"]
    a, b = np.array(FID_A), np.array(FID_B)
    assert spread["sd_a"] == pytest.approx(a.std(ddof=1)) and spread["sd_b"] == pytest.approx(b.std(ddof=1))
    assert spread["sd_b"] < spread["sd_a"] and spread["pitman_morgan_r"] < 0
    expected = stats.pearsonr(a + b, b - a, alternative="less")
    assert spread["pitman_morgan_r"] == pytest.approx(expected.statistic)
    assert spread["p_one_sided_b_less_spread"] == pytest.approx(expected.pvalue)
    assert "Pitman-Morgan" in capsys.readouterr().out
    swapped = main([arg if arg == "--pair" else ",".join(reversed(arg.split(","))) for arg in _write(tmp_path)])
    assert swapped["fid_spread"]["pitman_morgan_r"] == pytest.approx(-spread["pitman_morgan_r"])


def test_bad_arguments_name_what_is_wrong(tmp_path):
    pairs = _write(tmp_path)
    with pytest.raises(SystemExit, match="has no key 'c_s0'"):
        main(["--pair", f"{tmp_path}/fid.json:a_s0,{tmp_path}/fid.json:c_s0"])
    with pytest.raises(SystemExit, match="expected two FILE:KEY"):
        main(["--pair", f"{tmp_path}/fid.json:a_s0"])
    with pytest.raises(SystemExit, match="one per --pair"):
        main(pairs + ["--psnr", f"{tmp_path}/a_s0.json,{tmp_path}/b_s0.json"])
