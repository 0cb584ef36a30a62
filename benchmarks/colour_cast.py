"""Colour statistics of saved cross-reference colorizations against the real test colours.

    python benchmarks/colour_cast.py --data data/openmoji --split test \
        --run 'seed0=OUT/<run>-cross-*.npz' --run 'seed1=...' [--seed 0] [--out cast.json]

Over the *coloured* pixels of each set (neither paper nor line: min channel < 235 and max
channel > 30, in uint8): the mean RGB, its offset from the real test images' mean, the green
excess G - (R + B) / 2, and the share of pixels that are coloured. A model with a colour
cast (e.g. olive skin, green line art) stands out in the offset and the green excess even
where FID only says "worse".

And how much of the reference's colour each output takes: per channel, a least-squares fit
over images of (output mean - ground-truth mean) on (reference mean - ground-truth mean),
where the reference is the test image tools/score.py paired it with (the derangement of
``--seed``). Slope 1: the output takes the reference's colour; intercept: a colour offset
that does not depend on the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PAPER_MIN, LINE_MAX = 235, 30


def colour_stats(images: np.ndarray) -> dict:
    """uint8 [N, H, W, 3] -> {"mean_rgb": [3], "green_excess": float, "coloured_share": float}."""
    x = np.asarray(images, dtype=np.float32)
    coloured = (x.min(-1) < PAPER_MIN) & (x.max(-1) > LINE_MAX)
    pixels = x[coloured]
    if not len(pixels):
        raise ValueError("no coloured pixels: every pixel is paper or line")
    return {"mean_rgb": pixels.mean(0).tolist(),
            "green_excess": float((pixels[:, 1] - (pixels[:, 0] + pixels[:, 2]) / 2).mean()),
            "coloured_share": float(coloured.mean())}


def image_means(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float [N, 3] mean RGB of each image's coloured pixels (NaN if none)."""
    x = np.asarray(images, dtype=np.float32)
    coloured = (x.min(-1) < PAPER_MIN) & (x.max(-1) > LINE_MAX)
    return np.stack([x[i][coloured[i]].mean(0) if coloured[i].any() else np.full(3, np.nan)
                     for i in range(len(x))])


def reference_transfer(outputs: np.ndarray, references: np.ndarray, truths: np.ndarray) -> dict:
    """Per channel, fit (output - truth) = slope * (reference - truth) + intercept over images
    (float [N, 3] mean colours; images with a NaN are left out) -> {"slope": [3], "intercept": [3]}."""
    ok = ~(np.isnan(outputs) | np.isnan(references) | np.isnan(truths)).any(1)
    if ok.sum() < 2:
        raise ValueError("need at least two images with coloured pixels in output, reference and truth")
    x, y = (references - truths)[ok], (outputs - truths)[ok]
    fits = [np.linalg.lstsq(np.stack([x[:, c], np.ones(len(x))], 1), y[:, c], rcond=None)[0] for c in range(3)]
    return {"slope": [float(f[0]) for f in fits], "intercept": [float(f[1]) for f in fits]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the --data given to tools/score.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="the --seed given to tools/score.py")
    parser.add_argument("--run", action="append", required=True, help="NAME=GLOB_OR_FOLDER of saved outputs")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    from cross_grid import read_outputs
    from keras_scft.scoring.evalset import data_source_config, load_eval_set

    from keras_scft.scoring.tasks import derangement

    truths = load_eval_set(data_source_config(args.data, args.split), args.size).images
    real = colour_stats(truths)
    truth_means = image_means(truths)
    reference_means = truth_means[derangement(len(truths), args.seed)]
    results = {"real": real}
    for spec in args.run:
        name, _, where = spec.partition("=")
        outputs = read_outputs(where)
        if len(outputs) != len(truths):
            raise SystemExit(f"--run {name}: {len(outputs)} outputs for {len(truths)} test images")
        stats = colour_stats(outputs)
        stats["offset_from_real"] = (np.array(stats["mean_rgb"]) - real["mean_rgb"]).tolist()
        stats["reference_transfer"] = reference_transfer(image_means(outputs), reference_means, truth_means)
        results[name] = stats
    for name, stats in results.items():
        offset = stats.get("offset_from_real")
        print(f"{name:>12}: mean RGB {np.round(stats['mean_rgb'], 1)}"
              + (f", offset {np.round(offset, 1)}" if offset is not None else "")
              + f", green excess {stats['green_excess']:.1f}, coloured {stats['coloured_share']:.2f}")
        if "reference_transfer" in stats:
            fit = stats["reference_transfer"]
            print(f"{'':>12}  reference transfer: slope RGB {np.round(fit['slope'], 2)}, "
                  f"intercept RGB {np.round(fit['intercept'], 1)}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
