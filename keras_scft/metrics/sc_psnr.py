"""SC-PSNR: semantically corresponding PSNR on SPair-71k (SCFT paper, Lee et al. CVPR 2020).

Does the colorizer put the reference's colours on the parts of the sketch that correspond to
them? For each SPair-71k pair (source image, target image, keypoints ``src_kps[k]`` <->
``trg_kps[k]`` on the same semantic part):

1. both images are resized to the model size S x S (stretched, not cropped, so no keypoint is
   lost; Lanczos), and their keypoints are mapped with the same scaling, pixel-centre
   convention ``x' = (x + 0.5) * S / W - 0.5``;
2. the sketch is the XDoG outline of the resized source with the fixed parameters
   :data:`EVAL_XDOG` (binary lines; sigma 0.4 is the middle of ``SelfAugment``'s training
   range, the other values are its defaults);
3. the model colorizes that sketch with the resized target as reference;
4. for every keypoint k, a P x P patch of the output around ``src_kps[k]`` is compared with the
   P x P patch of the reference around ``trg_kps[k]``: PSNR on uint8 RGB (peak 255).

The paper does not state P; the default is S / 16 (16 px at 256 px, one cell of the SCFT
feature grid). The keypoint's pixel sits at index P // 2 of its patch; a patch that would
leave the frame is shifted inside it (no keypoint is skipped). Identical patches have an
infinite PSNR; it is capped at :data:`MAX_PSNR` dB, above any finite uint8 PSNR of patches up
to 160 x 160 px. SC-PSNR is the mean over all keypoint patches (of every pair); per-pair and
per-category means are the same mean over that pair's / category's patches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from keras_scft.augment.backend import active_backend
from keras_scft.augment.sketch import XDoGRanges, xdog_sketch
from keras_scft.data.io import read_image, resize_to
from keras_scft.data.spair import SPairPair
from keras_scft.inference import to_uint8, to_unit
from keras_scft.metrics.image_quality import psnr

# XDoG parameters of evaluation sketches (see keras_scft.augment.sketch).
EVAL_XDOG = {"sigma": 0.4, "k": 4.5, "p": 19.0, "eps": 0.01, "phi": 1e9}
MAX_PSNR = 100.0

Colorizer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(sketch uint8 [N, S, S, 1], reference uint8 [N, S, S, 3]) -> uint8 [N, S, S, 3]``."""


@dataclass(frozen=True)
class PairScore:
    """SC-PSNR of one pair: ``psnr`` float64 [K], one value (dB) per keypoint patch."""

    name: str
    category: str
    psnr: np.ndarray


def xdog_line_art(images: np.ndarray) -> np.ndarray:
    """Evaluation sketch of RGB images: uint8 [N, H, W, 3] -> uint8 [N, H, W, 1], white = 255.

    XDoG with the fixed parameters :data:`EVAL_XDOG`, so the same image always gives the
    same sketch.
    """
    radius = XDoGRanges(**{name: (value, value) for name, value in EVAL_XDOG.items()}).kernel_radius()
    params = {name: np.full((len(images),), value, np.float32) for name, value in EVAL_XDOG.items()}
    return to_uint8(ops.convert_to_numpy(xdog_sketch(active_backend(), to_unit(images), params, radius)))


def capped_psnr(images_0: np.ndarray, images_1: np.ndarray, max_db: float = MAX_PSNR) -> np.ndarray:
    """PSNR (dB) of uint8 [N, H, W, C] pairs, peak 255, identical pairs capped at ``max_db``.

    Returns float64 [N], finite.
    """
    return np.minimum(np.asarray(psnr(images_0, images_1), np.float64), max_db)


def default_patch_size(size: int) -> int:
    """SC-PSNR patch side at model size ``size``: ``size / 16`` (16 px at 256 px), at least 1."""
    return max(1, round(size / 16))


def scale_keypoints(keypoints: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
                    ) -> np.ndarray:
    """Map (x, y) pixel keypoints float [K, 2] from an image of ``from_size`` (height, width)
    to the same image resized to ``to_size`` (pixel-centre convention). Returns float32 [K, 2].
    """
    (h0, w0), (h1, w1) = from_size, to_size
    scale = np.array([w1 / w0, h1 / h0], np.float32)
    return ((np.asarray(keypoints, np.float32) + 0.5) * scale - 0.5).astype(np.float32)


def keypoint_patches(image: np.ndarray, keypoints: np.ndarray, patch_size: int) -> np.ndarray:
    """P x P patches of ``image`` [H, W, C] around (x, y) ``keypoints`` float [K, 2].

    The keypoint's nearest pixel sits at row/column ``P // 2`` of its patch; patches that would
    leave the image are shifted inside it. Returns [K, P, P, C], the image's dtype.
    """
    height, width = image.shape[:2]
    if not 1 <= patch_size <= min(height, width):
        raise ValueError(f"patch size {patch_size} does not fit a {height}x{width} image")
    centers = np.floor(np.asarray(keypoints, np.float64) + 0.5).astype(np.int64)
    if not len(centers):
        return np.zeros((0, patch_size, patch_size, image.shape[2]), image.dtype)
    lefts = np.clip(centers[:, 0] - patch_size // 2, 0, width - patch_size)
    tops = np.clip(centers[:, 1] - patch_size // 2, 0, height - patch_size)
    return np.stack([image[top:top + patch_size, left:left + patch_size] for top, left in zip(tops, lefts)])


def keypoint_psnr(output: np.ndarray, reference: np.ndarray, output_keypoints: np.ndarray,
                  reference_keypoints: np.ndarray, patch_size: int, max_db: float = MAX_PSNR
                  ) -> np.ndarray:
    """PSNR of each output patch (at ``output_keypoints``) against the reference patch at the
    corresponding ``reference_keypoints``.

    Args:
        output, reference: uint8 [H, W, 3] (sizes may differ).
        output_keypoints, reference_keypoints: float [K, 2] (x, y) pixels, row k <-> row k.
        patch_size: P.

    Returns:
        float64 [K] in dB, capped at ``max_db``.
    """
    return capped_psnr(keypoint_patches(output, output_keypoints, patch_size),
                       keypoint_patches(reference, reference_keypoints, patch_size), max_db)


def resized_pair(pair: SPairPair, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(source, target, source_keypoints, target_keypoints)`` at the model size.

    Images uint8 [size, size, 3] (stretched, Lanczos); keypoints float32 [K, 2] scaled alike.
    """
    resized = []
    for path, keypoints in ((pair.source_image, pair.source_keypoints),
                            (pair.target_image, pair.target_keypoints)):
        image = read_image(path, "rgb")
        resized.append((resize_to(image, size), scale_keypoints(keypoints, image.shape[:2], (size, size))))
    (source, source_kps), (target, target_kps) = resized
    return source, target, source_kps, target_kps


def sc_psnr_scores(colorize: Colorizer, pairs: Sequence[SPairPair], size: int,
                   patch_size: int | None = None, batch_size: int = 8, progress: bool = False
                   ) -> list[PairScore]:
    """Colorize each pair's source sketch with its target as reference and score it.

    Args:
        colorize: the model under test (see :data:`Colorizer`), called on batches of pairs.
        pairs: e.g. from :func:`keras_scft.data.spair.read_spair_pairs`.
        size: model size S (images are resized to S x S).
        patch_size: P; default :func:`default_patch_size`.
        batch_size: pairs per ``colorize`` call.
        progress: show a tqdm bar.

    Returns:
        One :class:`PairScore` per pair, in order.
    """
    patch_size = default_patch_size(size) if patch_size is None else patch_size
    scores = []
    starts = range(0, len(pairs), batch_size)
    for start in tqdm(starts, desc="SC-PSNR", unit="batch", disable=not progress):
        batch = pairs[start:start + batch_size]
        sources, targets, source_kps, target_kps = zip(*(resized_pair(p, size) for p in batch))
        outputs = colorize(xdog_line_art(np.stack(sources)), np.stack(targets))
        for pair, output, target, out_kps, ref_kps in zip(batch, outputs, targets, source_kps, target_kps):
            scores.append(PairScore(pair.name, pair.category,
                                    keypoint_psnr(output, target, out_kps, ref_kps, patch_size)))
    return scores


def summarize_sc_psnr(scores: Iterable[PairScore]) -> dict:
    """SC-PSNR summary (JSON-ready).

    Returns ``{"mean", "n_pairs", "n_keypoints", "per_category": {category: {"mean",
    "n_pairs", "n_keypoints"}}, "per_pair": [{"name", "category", "mean", "n_keypoints"}]}``;
    every mean is over keypoint patches (dB).
    """
    scores = list(scores)
    if not scores:
        raise ValueError("no SPair-71k pairs were scored")
    by_category: dict[str, list[PairScore]] = {}
    for score in scores:
        by_category.setdefault(score.category, []).append(score)
    return {
        **_patch_mean(scores),
        "per_category": {c: _patch_mean(s) for c, s in by_category.items()},
        "per_pair": [{"name": s.name, "category": s.category, "mean": float(np.mean(s.psnr)),
                      "n_keypoints": len(s.psnr)} for s in scores],
    }


def _patch_mean(scores: Sequence[PairScore]) -> dict:
    values = np.concatenate([s.psnr for s in scores])
    return {"mean": float(np.mean(values)), "n_pairs": len(scores), "n_keypoints": len(values)}
