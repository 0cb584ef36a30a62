"""The evaluation tasks behind the project's results table (``keras-scft score``).

* :func:`self_reference`: sketch (real line art, else fixed XDoG) + a TPS-warped,
  colour-shifted copy of the same image as reference (``SelfAugment``, fixed seed); the
  output is compared with the colour-shifted, unwarped image (PSNR / SSIM / LPIPS), next to the
  "copy the reference" baseline (the reference itself scored the same way).
* :func:`cross_reference`: sketch + another image of the set as reference (a seeded
  derangement, or another emoji of the same OpenMoji subgroup); FID / KID of the outputs
  against the set's real colour images.
* :func:`correspondence`: attention-argmax accuracy on the self-reference examples.
* :func:`spair_sc_psnr`: SC-PSNR on SPair-71k pairs.

Every task returns a JSON-ready dict with its sample count. All images are uint8 at the
evaluation size S (the generator runs at S too).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from keras_scft.data.spair import SPairPair
from keras_scft.inference import colorize, to_unit
from keras_scft.layers.generator import SCFTGenerator
from keras_scft.metrics.background import background_error
from keras_scft.metrics.correspondence import evaluate_correspondence
from keras_scft.metrics.fid import FIDScorer
from keras_scft.metrics.image_quality import ssim
from keras_scft.metrics.lpips import LPIPS, lpips_distances
from keras_scft.metrics.sc_psnr import (
    capped_psnr,
    default_patch_size,
    sc_psnr_scores,
    summarize_sc_psnr,
)
from keras_scft.augment.example import SelfAugment
from keras_scft.scoring.evalset import EvalSet, self_reference_examples
from keras_scft.scoring.report import PAIRINGS


def self_reference(generator: SCFTGenerator, evalset: EvalSet, augment: SelfAugment, metrics: Collection[str],
                   lpips: LPIPS | None = None, batch_size: int = 16, progress: bool = False,
                   save_dir: Path | None = None) -> dict:
    """PSNR / SSIM / LPIPS of self-reference colorizations against their ground truth.

    Args:
        generator: the model under test; runs at the set's size.
        evalset: the images (and line art).
        augment: the seeded warp and colour shift (``evaluation_augment``).
        metrics: which of ``"psnr"``, ``"ssim"``, ``"lpips"`` to compute.
        lpips: the LPIPS network (needed when ``"lpips"`` is asked for).
        batch_size: images per forward pass.
        progress: show tqdm bars.
        save_dir: if given, the outputs are written to ``save_dir/self_reference/<i>.png``.

    Returns:
        ``{"n": N, "model": {metric: mean}, "copy_reference": {metric: mean}}``.
    """
    outputs, references, targets = [], [], []
    for example in _progress(self_reference_examples(evalset, augment, batch_size),
                             "self-reference", len(evalset), batch_size, progress):
        outputs.append(_colorize(generator, example["sketch"], example["reference"], batch_size))
        references.append(example["reference"])
        targets.append(example["target"])
    targets = np.concatenate(targets)
    outputs = np.concatenate(outputs)
    if save_dir is not None:
        save_images(outputs, Path(save_dir) / "self_reference")
    return {
        "n": len(targets),
        "model": image_scores(outputs, targets, metrics, lpips, batch_size, progress),
        "copy_reference": image_scores(np.concatenate(references), targets, metrics, lpips, batch_size,
                                       progress),
    }


def image_scores(images: np.ndarray, targets: np.ndarray, metrics: Collection[str],
                 lpips: LPIPS | None = None, batch_size: int = 16, progress: bool = False
                 ) -> dict[str, float]:
    """Mean per-image PSNR (dB, capped at 100), SSIM and/or LPIPS of uint8 [N, S, S, 3] images.

    ``progress`` shows a tqdm bar for LPIPS (the slow one).
    """
    scores = {}
    if "psnr" in metrics:
        scores["psnr"] = _batched_mean(capped_psnr, images, targets, batch_size)
    if "ssim" in metrics:
        scores["ssim"] = _batched_mean(ssim, images, targets, batch_size)
    if "lpips" in metrics:
        distances = lpips_distances(images, targets, metric=lpips, batch_size=batch_size, progress=progress)
        scores["lpips"] = float(np.mean(distances))
    return scores


def cross_reference(generator: SCFTGenerator, evalset: EvalSet, seed: int, metrics: Collection[str],
                    inception: keras.Model | None, batch_size: int = 16, progress: bool = False,
                    save_dir: Path | None = None, pairing: str = "random") -> dict:
    """FID / KID / background leak of colorizations whose reference is another image of the set.

    ``pairing="random"``: image i is colorized with image ``derangement(N, seed)[i]`` as
    reference, and the outputs are compared with the N real colour images of the set.
    ``"subgroup"``: with another emoji of its OpenMoji subgroup (:func:`subgroup_partners`),
    so that reference and sketch show related things (two person roles, two birds); images
    without such a partner are left out, of the outputs and of the real images alike.

    Args:
        metrics: which of ``"fid"``, ``"kid"``, ``"bg"`` to report (bg: see
            :func:`keras_scft.metrics.background.background_error`).
        inception: the FID Inception network (``keras_scft.metrics.inception.fid_inception``);
            None with no metrics only writes the outputs (``save_dir``).
        pairing: one of :data:`keras_scft.scoring.report.PAIRINGS`.
        Others as for :func:`self_reference`; outputs go to ``save_dir/cross_reference/``
            (random) or ``save_dir/cross_reference_subgroup/``, numbered in set order.

    Returns:
        ``{"pairing": str, "n": n, "n_real": n, "fid"?: float, "kid"?: float,
        "kid_std"?: float or None, "bg"?: float or None, "bg_white_fraction"?: float}``
        (n = N for random pairing; kid_std None: the KID subsets covered both whole sets,
        see ``metrics.fid.kid``).
    """
    partner = reference_partners(evalset, pairing, seed)
    folder = "cross_reference" if pairing == "random" else f"cross_reference_{pairing}"
    kept = np.flatnonzero(partner >= 0)
    outputs = []
    for start in _progress(range(0, len(kept), batch_size), "cross-reference", len(kept),
                           batch_size, progress):
        index = kept[start:start + batch_size]
        outputs.append(_colorize(generator, evalset.sketches[index], evalset.images[partner[index]],
                                 batch_size))
    outputs = np.concatenate(outputs)
    reals = evalset.images[kept]
    if save_dir is not None:
        save_images(outputs, Path(save_dir) / folder)
    scores = {"pairing": pairing, "n": len(outputs), "n_real": len(reals)}
    if "bg" in metrics:
        scores["bg"], scores["bg_white_fraction"] = background_error(outputs, reals)
    if inception is None:
        return scores
    result = FIDScorer.from_images(reals, model=inception).score(outputs)
    if "fid" in metrics:
        scores["fid"] = result.fid
    if "kid" in metrics:
        scores.update(kid=result.kid, kid_std=result.kid_std)
    return scores


def save_images(images: np.ndarray, folder: Path) -> None:
    """Write uint8 [N, H, W, 3] images as ``folder/<index:05d>.png`` (atomically)."""
    from keras_scft.data.io import write_png

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_png(folder / f"{i:05d}.png", image)


def reference_partners(evalset: EvalSet, pairing: str, seed: int) -> np.ndarray:
    """The cross-reference task's reference of each image: int64 [N], -1 for an image left out.

    ``pairing`` is one of :data:`keras_scft.scoring.report.PAIRINGS`: ``"random"``
    (:func:`derangement`, nobody left out) or ``"subgroup"`` (:func:`subgroup_partners`).
    """
    if pairing == "random":
        return derangement(len(evalset), seed)
    if pairing == "subgroup":
        return subgroup_partners(evalset.names, evalset.categories, seed)
    raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {pairing!r}")


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` without fixed points: int64 [n], ``p[i] != i``.

    The images are shuffled into one cycle; each takes the next one in the cycle.
    """
    if n < 2:
        raise ValueError(f"pairing images with other images needs at least 2 images, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    partner = np.empty(n, np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def subgroup_partners(names: Sequence[str], categories: Sequence[str], seed: int) -> np.ndarray:
    """For each image, a seeded random other image of its OpenMoji subgroup that is not a
    skin-tone variant of the same emoji: int64 [N], -1 where there is none.

    Args:
        names: OpenMoji hex codes (skin-tone families by
            :func:`keras_scft.data.openmoji.skin_tone_group_key`).
        categories: their ``"group/subgroup"`` (the prepared manifest's ``categories``).

    Raises:
        ValueError: no categories (another source, or a folder prepared before manifests had
            them), or no image has a partner.
    """
    from keras_scft.data.openmoji import skin_tone_group_key

    if not categories or len(categories) != len(names):
        raise ValueError("pairing by subgroup needs OpenMoji data whose manifest has categories: "
                         "prepare it again (`python tools/prepare_data.py openmoji --out DIR` adds "
                         "them without rendering anew)")
    families = [skin_tone_group_key(name) for name in names]
    rng = np.random.default_rng(seed)
    partner = np.full(len(names), -1, np.int64)
    for i, (category, family) in enumerate(zip(categories, families)):
        others = [j for j, (c, f) in enumerate(zip(categories, families)) if c == category and f != family]
        if others:
            partner[i] = others[rng.integers(len(others))]
    if not (partner >= 0).any():
        raise ValueError(f"pairing by subgroup: none of the {len(names)} images has another emoji "
                         "of its subgroup in the set")
    return partner


def correspondence(generator: SCFTGenerator, evalset: EvalSet, augment: SelfAugment, batch_size: int = 16,
                   progress: bool = False) -> dict:
    """Attention-correspondence accuracy on the self-reference examples (same ``augment``).

    Returns ``{"n_images": N, "n": valid cells, "exact": float, "within1": float}``.
    """
    batches = ({"sketch": to_unit(example["sketch"]), "reference": to_unit(example["reference"]),
                "correspondence": example["correspondence"], "valid": example["valid"]}
               for example in self_reference_examples(evalset, augment, batch_size))
    total = _batch_count(len(evalset), batch_size)
    return {"n_images": len(evalset), **evaluate_correspondence(generator, batches, total, progress)}


def spair_sc_psnr(generator: SCFTGenerator, pairs: Sequence[SPairPair], size: int,
                  patch_size: int | None = None, batch_size: int = 16, progress: bool = False) -> dict:
    """SC-PSNR of the generator on SPair-71k pairs at model size ``size``.

    Returns ``{"patch_size": P, **summarize_sc_psnr(...)}`` (mean, counts, per category, per pair).
    """
    patch_size = default_patch_size(size) if patch_size is None else patch_size
    scores = sc_psnr_scores(lambda sketch, reference: _colorize(generator, sketch, reference, batch_size),
                            pairs, size, patch_size, batch_size, progress)
    return {"patch_size": patch_size, **summarize_sc_psnr(scores)}


def _colorize(generator: SCFTGenerator, sketch: np.ndarray, reference: np.ndarray, batch_size: int
              ) -> np.ndarray:
    """uint8 sketches [B, S, S, 1] + references [B, S, S, 3] -> uint8 [B, S, S, 3], run at S."""
    return colorize(generator, sketch, reference, size=sketch.shape[1:3], batch_size=batch_size)


def _batched_mean(metric: Callable, images: np.ndarray, targets: np.ndarray, batch_size: int) -> float:
    """Mean of a per-image ``metric(images, targets) -> [B]`` evaluated batch by batch."""
    values = [np.asarray(metric(images[i:i + batch_size], targets[i:i + batch_size]), np.float64)
              for i in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate(values)))


def _batch_count(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def _progress(iterable, desc: str, n: int, batch_size: int, enabled: bool):
    return tqdm(iterable, desc=desc, unit="batch", total=_batch_count(n, batch_size), disable=not enabled)
