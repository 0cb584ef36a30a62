"""A grid of cross-reference colorizations saved by ``tools/score.py --save-outputs``.

    python benchmarks/cross_grid.py --data data/openmoji --split test --rows 0,17,42 \
        --run 'bar=OUT/bar-cross-*.npz' --run 'full=OUT/full-cross-*.npz' --out grid.jpg

Columns: line art | reference (the test image the scorer paired it with: the derangement of
``--seed``, or with ``--pairing subgroup`` another emoji of its subgroup, as in
tools/score.py) | one column per ``--run`` (packed outputs, see benchmarks/pack_images.py, or
a folder of the PNGs) | ground truth. Written as JPEG (quality 90): the grids of a GAN
compress badly as PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from keras_scft.scoring.report import PAIRINGS  # noqa: E402  (imports no Keras)


def read_outputs(spec: str) -> np.ndarray:
    """uint8 [N, S, S, 3], sorted by name, from packed chunks (glob) or a folder of PNGs."""
    from pack_images import unpack

    if os.path.isdir(spec):
        paths = sorted(Path(spec).glob("*.png"))
        if not paths:
            raise SystemExit(f"--run {spec}: no PNGs in that folder")
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    names, images = unpack(spec)
    if not names:
        raise SystemExit(f"--run {spec}: no packed outputs match")
    return images


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that locate the test set and the saved outputs (shared with colour_cast.py)."""
    parser.add_argument("--data", required=True, help="the --data given to tools/score.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="the --seed given to tools/score.py")
    parser.add_argument("--pairing", choices=PAIRINGS, default="random",
                        help="the --pairing given to tools/score.py (subgroup: the outputs are of the "
                             "test images that have a partner)")
    parser.add_argument("--run", action="append", required=True, help="NAME=GLOB_OR_FOLDER of saved outputs")


def load_outputs(args: argparse.Namespace):
    """(eval set, scored, partner, [(name, uint8 [M, S, S, 3] outputs)]).

    ``scored`` int64 [M]: the test images that were colorized (all of them, or with ``--pairing
    subgroup`` those with a partner), in the outputs' order; the reference of test image i is
    image ``partner[i]``, paired as in tools/score.py (the derangement of ``--seed``, or a
    seeded other emoji of its subgroup). Exits naming the run whose output count differs.
    """
    from keras_scft.scoring.evalset import data_source_config, load_eval_set
    from keras_scft.scoring.tasks import reference_partners

    evalset = load_eval_set(data_source_config(args.data, args.split), args.size)
    try:
        partner = reference_partners(evalset, args.pairing, args.seed)
    except ValueError as error:
        raise SystemExit(f"--pairing {args.pairing}: {error}") from None
    scored = np.flatnonzero(partner >= 0)
    runs = []
    for spec in args.run:
        name, _, where = spec.partition("=")
        outputs = read_outputs(where)
        if len(outputs) != len(scored):
            raise SystemExit(f"--run {name}: {len(outputs)} outputs for the {len(scored)} test images "
                             f"scored with --pairing {args.pairing}")
        runs.append((name, outputs))
    return evalset, scored, partner, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser)
    parser.add_argument("--rows", required=True, help="comma list of test-image indices")
    parser.add_argument("--scale", type=float, default=0.5, help="resize the grid by this factor (small files)")
    parser.add_argument("--out", required=True, help="the grid image (.jpg)")
    args = parser.parse_args()

    from keras_scft.grids import image_grid

    evalset, scored, partner, runs = load_outputs(args)
    rows = [int(r) for r in args.rows.split(",")]
    position = {int(index): p for p, index in enumerate(scored)}
    unscored = [r for r in rows if r not in position]
    if unscored:
        raise SystemExit(f"--rows {','.join(map(str, unscored))}: not among the {len(scored)} test images "
                         f"scored with --pairing {args.pairing} (indices 0-{len(evalset.images) - 1})")
    columns = [evalset.sketches[rows], evalset.images[partner[rows]]]
    columns += [outputs[[position[r] for r in rows]] for _, outputs in runs]
    columns.append(evalset.images[rows])
    grid = Image.fromarray(image_grid(columns))
    grid = grid.resize((round(grid.width * args.scale), round(grid.height * args.scale)), Image.LANCZOS)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, quality=90)
    print(f"wrote {args.out}: {len(rows)} rows x {len(columns)} columns "
          f"(line art | reference | {' | '.join(name for name, _ in runs)} | ground truth)")


if __name__ == "__main__":
    main()
