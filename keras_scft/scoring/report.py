"""The scores file of `keras-scft score` and its printed table.

The file is one JSON object, written atomically::

    {"format": "keras-scft/scores/1",
     "settings": {model, data, split, size, seeds, metric definitions, weights, versions, ...},
     "tasks": {"self_reference": ..., "cross_reference": ..., "correspondence": ...,
               "sc_psnr": ...}}   # only the tasks that ran; see keras_scft.scoring.tasks

Change :data:`SCORES_FORMAT` (and the definitions below) whenever a number stops being
comparable with the numbers of earlier files.
"""

from __future__ import annotations

import json
import os

from keras_scft.data.io import write_atomic

SCORES_FORMAT = "keras-scft/scores/1"

# The --metrics names, by the task (keras_scft.scoring.tasks) that computes them.
TASK_METRICS = {
    "self_reference": ("psnr", "ssim", "lpips"),
    "cross_reference": ("fid", "kid", "bg"),
    "correspondence": ("corr",),
    "sc_psnr": ("sc_psnr",),
}
# How the cross-reference task picks each sketch's reference (keras_scft.scoring.tasks.cross_reference).
PAIRINGS = ("random", "subgroup")
METRIC_DEFINITIONS = {
    "psnr": "self-reference: mean over images of PSNR (uint8 RGB, peak 255, capped at 100 dB) "
            "vs the colour-shifted ground truth",
    "ssim": "self-reference: mean over images of SSIM (Gaussian 11x11, sigma 1.5, no padding, "
            "uint8 RGB) vs the colour-shifted ground truth",
    "lpips": "self-reference: mean over images of LPIPS v0.1 VGG16 vs the colour-shifted ground truth",
    "fid": "cross-reference: FID of the outputs vs the set's real colour images (pairing subgroup: "
           "those of the images that have a partner); clean-fid 'clean' resize to 299, FID "
           "Inception (TF inception-2015-12-05) pool_3",
    "kid": "cross-reference: KID (unbiased polynomial MMD^2, 100 subsets of min(1000, N)) of "
           "the outputs vs the real colour images, same features as fid",
    "bg": "cross-reference: mean |output - white| (0-255, RGB mean) over the pixels that are white "
          "(all channels >= 250) in the sketch's own colour image: colour leaked onto the paper",
    "corr": "self-reference examples: fraction of valid sketch cells whose SCFT attention argmax "
            "is the TPS target cell (exact) or within 1 cell of it (within1, Chebyshev)",
    "sc_psnr": "SPair-71k: PSNR of output patches at source keypoints vs reference patches at "
               "target keypoints, mean over keypoints (see keras_scft.metrics.sc_psnr)",
}


def write_scores(path: str | os.PathLike, scores: dict) -> None:
    """Write the scores object as JSON (atomically; non-finite numbers are an error)."""
    write_atomic(path, (json.dumps(scores, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def format_table(tasks: dict) -> str:
    """The task results as an aligned text table: task, metric, model, copy-reference, N."""
    rows = [("task", "metric", "model", "copy-ref", "N")]
    if "self_reference" in tasks:
        result = tasks["self_reference"]
        for metric, value in result["model"].items():
            rows.append(("self_reference", metric, _number(value),
                         _number(result["copy_reference"][metric]), f"{result['n']} images"))
    if "cross_reference" in tasks:
        result = tasks["cross_reference"]
        task = "cross_reference" + ("" if result.get("pairing", "random") == "random" else f" ({result['pairing']})")
        for metric in ("fid", "kid", "bg"):
            if metric in result:
                rows.append((task, metric, _number(result[metric]), "", f"{result['n']} images"))
    if "correspondence" in tasks:
        result = tasks["correspondence"]
        for metric in ("exact", "within1"):
            rows.append(("correspondence", metric, _number(result[metric]), "", f"{result['n']} cells"))
    if "sc_psnr" in tasks:
        result = tasks["sc_psnr"]
        groups = [("all", result), *result["per_category"].items()]
        for name, group in groups:
            rows.append(("sc_psnr", name, _number(group["mean"]), "",
                         f"{group['n_keypoints']} keypoints / {group['n_pairs']} pairs"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
