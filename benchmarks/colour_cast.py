"""Colour statistics of saved cross-reference colorizations against the real test colours.

    python benchmarks/colour_cast.py --data data/openmoji --split test \
        --run 'seed0=OUT/<run>-cross-*.npz' --run 'seed1=...' [--out cast.json]

Over the *coloured* pixels of each set (neither paper nor line: min channel < 235 and max
channel > 30, in uint8): the mean RGB, its offset from the real test images' mean, the green
excess G - (R + B) / 2, and the share of pixels that are coloured. A model with a colour
cast (e.g. olive skin, green line art) stands out in the offset and the green excess even
where FID only says "worse".
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the --data given to tools/score.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--run", action="append", required=True, help="NAME=GLOB_OR_FOLDER of saved outputs")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()

    from cross_grid import read_outputs
    from keras_scft.scoring.evalset import data_source_config, load_eval_set

    real = colour_stats(load_eval_set(data_source_config(args.data, args.split), args.size).images)
    results = {"real": real}
    for spec in args.run:
        name, _, where = spec.partition("=")
        stats = colour_stats(read_outputs(where))
        stats["offset_from_real"] = (np.array(stats["mean_rgb"]) - real["mean_rgb"]).tolist()
        results[name] = stats
    for name, stats in results.items():
        offset = stats.get("offset_from_real")
        print(f"{name:>12}: mean RGB {np.round(stats['mean_rgb'], 1)}"
              + (f", offset {np.round(offset, 1)}" if offset is not None else "")
              + f", green excess {stats['green_excess']:.1f}, coloured {stats['coloured_share']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
