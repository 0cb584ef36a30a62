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
where the reference is the test image tools/score.py paired it with (``--seed`` and
``--pairing`` as given to it). Slope 1: the output takes the reference's colour; intercept: a colour offset
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

from cross_grid import add_output_arguments, load_outputs  # noqa: E402

PAPER_MIN, LINE_MAX = 235, 30


def _coloured(x: np.ndarray) -> np.ndarray:
    """float [..., 3] pixels -> bool [...]: neither paper nor line."""
    return (x.min(-1) < PAPER_MIN) & (x.max(-1) > LINE_MAX)


def colour_stats(images: np.ndarray) -> dict:
    """uint8 [N, H, W, 3] -> {"mean_rgb": [3], "green_excess": float, "coloured_share": float}."""
    x = np.asarray(images, dtype=np.float32)
    coloured = _coloured(x)
    pixels = x[coloured]
    if not len(pixels):
        raise ValueError("no coloured pixels: every pixel is paper or line")
    return {"mean_rgb": pixels.mean(0).tolist(),
            "green_excess": float((pixels[:, 1] - (pixels[:, 0] + pixels[:, 2]) / 2).mean()),
            "coloured_share": float(coloured.mean())}


def image_means(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float [N, 3] mean RGB of each image's coloured pixels (NaN if none)."""
    x = np.asarray(images, dtype=np.float32)
    coloured = _coloured(x)
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
    add_output_arguments(parser)
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    evalset, scored, partner, runs = load_outputs(args)
    real = colour_stats(evalset.images[scored])
    means = image_means(evalset.images)
    truth_means = means[scored]
    results = {"real": real}
    for name, outputs in runs:
        stats = colour_stats(outputs)
        stats["offset_from_real"] = (np.array(stats["mean_rgb"]) - real["mean_rgb"]).tolist()
        stats["reference_transfer"] = reference_transfer(image_means(outputs), means[partner[scored]], truth_means)
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
