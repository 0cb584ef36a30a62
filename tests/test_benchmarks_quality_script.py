"""benchmarks/openmoji_quality.sh: configs, their overrides and GPUS, with python3 stubbed out."""

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Stands in for python3: records each tools/train.py call (its GPU and arguments) and writes
# the files the script packs, so the script's own logic runs without training anything.
FAKE_PYTHON = """#!/usr/bin/env bash
case "$1" in
  tools/train.py)
    for a in "$@"; do case "$a" in output.dir=*) dir=${a#output.dir=};; esac; done
    mkdir -p "$dir" && touch "$dir/generator.keras"
    echo "gpu=${CUDA_VISIBLE_DEVICES:-none} $*" >> "$CALLS" ;;
  tools/score.py)
    [ -n "${SCORE_CALLS:-}" ] && echo "$*" >> "$SCORE_CALLS"
    while [ $# -gt 0 ]; do
      case "$1" in --out) echo '{}' > "$2";; --save-outputs) mkdir -p "$2/cross_reference";; esac; shift
    done ;;
esac
exit 0
"""


def _run(tmp_path, configs, gpus=None, **extra_env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "RUNS": str(tmp_path / "runs")}
    for name in ("GPUS", "CUDA_VISIBLE_DEVICES", "METRICS"):
        env.pop(name, None)
    if gpus is not None:
        env["GPUS"] = gpus
    env.update(extra_env)
    result = subprocess.run(["bash", "benchmarks/openmoji_quality.sh", str(tmp_path / "out"), "7", configs],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return sorted(calls.read_text().splitlines())


def test_configs_get_their_overrides_and_pack_their_runs(tmp_path):
    calls = _run(tmp_path, "bar,full@loss.weights.style=10@seed=2")
    assert len(calls) == 2
    bar = next(c for c in calls if "output.dir=" + str(tmp_path / "runs" / "bar") + " " in c + " ")
    assert "-o loss.weights.triplet=0" in bar and "-o model.perceptual=null" in bar and "-o train.steps=7" in bar
    full = next(c for c in calls if "full_loss.weights.style-10_seed-2" in c)
    assert "-o loss.weights.style=10 -o seed=2" in full and "triplet=0" not in full
    assert all(c.startswith("gpu=none ") for c in calls)  # without GPUS: the one GPU the script sees
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tar")) == [
        "bar.tar", "full_loss.weights.style-10_seed-2.tar"]


def test_gpus_spread_the_configs_round_robin(tmp_path):
    calls = _run(tmp_path, "bar@seed=0,bar@seed=1,bar@seed=2", gpus="2,5")
    gpu_of = {c.split("bar_seed-")[1][0]: c.split()[0] for c in calls}
    assert gpu_of == {"0": "gpu=2", "1": "gpu=5", "2": "gpu=2"}


def test_subgroup_scores_the_subgroup_pairing_too_and_packs_its_scores(tmp_path):
    score_calls = tmp_path / "scores.log"
    _run(tmp_path, "bar", SUBGROUP="1", SCORE_CALLS=str(score_calls))
    calls = score_calls.read_text().splitlines()
    assert len(calls) == 2 and "--pairing" not in calls[0]
    assert "--pairing subgroup" in calls[1] and "scores_subgroup.json" in calls[1]
    listing = subprocess.run(["tar", "-tf", str(tmp_path / "out" / "bar.tar")], capture_output=True, text=True,
                             check=True).stdout.split()
    assert "bar/scores.json" in listing and "bar/scores_subgroup.json" in listing


def test_metrics_choose_the_main_scoring_metrics(tmp_path):
    logs = {}
    for name, metrics in (("default", None), ("chosen", "psnr,ssim,corr")):
        (tmp_path / name).mkdir()
        logs[name] = tmp_path / name / "scores.log"
        _run(tmp_path / name, "bar", SCORE_CALLS=str(logs[name]), **({"METRICS": metrics} if metrics else {}))
    assert "--metrics psnr,ssim,lpips,corr " in logs["default"].read_text()
    assert "--metrics psnr,ssim,corr " in logs["chosen"].read_text()
