"""FID/KID of packed colorizations (benchmarks/pack_images.py) against real images.

    python benchmarks/fid_from_outputs.py --real data/openmoji --split test \
        --fake 'OUT/full-cross-*.npz' [--fake ...] [--floor-split val] --out fid.json

Uses the TF FID-Inception weights (keras_scft.metrics.inception, converted into the cache)
with clean-fid resizing; prints FID, KID x 1000 and N per set, and optionally the floor:
real images of another split against the same real set. For outputs of
`tools/score.py --pairing subgroup`, pass `--pairing subgroup` (and its `--seed`): the real
set is then the images that had a partner, as there.
"""

from __future__ import annotations

import json
import os
import sys

import click

from keras_scft.scoring.report import PAIRINGS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@click.command(help=__doc__)
@click.option("--real", required=True, help="Prepared OpenMoji folder.")
@click.option("--split", default="test", show_default=True)
@click.option("--size", default=256, show_default=True)
@click.option("--fake", "fakes", multiple=True, required=True, help="Glob of packed .npz chunks (repeatable).")
@click.option("--floor-split", default=None, help="Also score real images of this split (the floor).")
@click.option("--pairing", type=click.Choice(PAIRINGS), default="random", show_default=True,
              help="The --pairing the outputs were made with (subgroup: real set = the images with a partner).")
@click.option("--seed", default=0, show_default=True, help="The --seed the outputs were made with.")
@click.option("--out", default=None, help="Write the results as JSON here.")
def main(real, split, size, fakes, floor_split, pairing, seed, out):
    from pack_images import unpack

    from keras_scft.data.pipeline import load_arrays
    from keras_scft.data.sources import OpenMojiSource
    from keras_scft.metrics.fid import FIDScorer
    from keras_scft.metrics.inception import fid_inception

    from keras_scft.scoring.evalset import load_eval_set
    from keras_scft.scoring.tasks import reference_partners

    model = fid_inception("fid")
    evalset = load_eval_set({"type": "openmoji", "root": real, "split": split}, size)
    reals = evalset.images[reference_partners(evalset, pairing, seed) >= 0]  # those tools/score.py colorized
    scorer = FIDScorer.from_images(reals, model=model)
    results = {}
    sets = [(pattern, unpack(pattern)[1]) for pattern in fakes]
    if floor_split:
        sets.append((f"real:{floor_split}", load_arrays(OpenMojiSource(real, floor_split), size, progress=False)["image"]))
    for name, images in sets:
        r = scorer.score(images, kid_subsets=100, kid_subset_size=min(len(images), len(reals), 1000))
        results[name] = {"fid": r.fid, "kid_x1000": 1000 * r.kid, "kid_std_x1000": None if r.kid_std is None else 1000 * r.kid_std,
                         "n_fake": r.n_fake, "n_real": r.n_real}
        print(f"{name}: FID {r.fid:.2f}  KIDx1000 {1000 * r.kid:.2f}  N {r.n_fake} vs {r.n_real}", flush=True)
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
