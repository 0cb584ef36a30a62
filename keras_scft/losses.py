"""The five training losses of SCFT, as pure functions of tensors (keras.ops).

Every function casts its inputs to float32 first, so the losses are computed in float32 even
when the networks run in ``mixed_bfloat16``. Images are float in [-1, 1].
"""

from __future__ import annotations

from keras import ops

GAN_LOSSES = ("lsgan", "bce")


def _f32(x):
    return ops.cast(x, "float32")


def _mean_over_examples(per_element, weights):
    """Mean of [B, ...] values; with ``weights`` [B] (1 = counts, 0 = left out) the weighted
    mean of the per-example means (0 when every weight is 0)."""
    if weights is None:
        return ops.mean(per_element)
    per_example = ops.mean(ops.reshape(per_element, (ops.shape(per_element)[0], -1)), axis=-1)
    weights = _f32(weights)
    return ops.sum(per_example * weights) / ops.maximum(ops.sum(weights), 1.0)


def reconstruction_loss(output, target, weights=None):
    """L_rec: mean absolute error between output and I_gt [B, H, W, 3] -> scalar.

    ``weights`` [B] (optional): which examples count (e.g. 0 for examples without a ground
    truth); the loss is then the mean over the counted examples.
    """
    return _mean_over_examples(ops.abs(_f32(output) - _f32(target)), weights)


def discriminator_loss(real_logits, fake_logits, kind: str = "lsgan"):
    """D's adversarial loss on patch logits of (I_gt, I_s) and (output, I_s) -> scalar.

    ``lsgan``: mean((D(real) - 1)^2) + mean(D(fake)^2), halved (as in the public code).
    ``bce``: the paper's cross-entropy form, -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))).
    """
    real, fake = _f32(real_logits), _f32(fake_logits)
    if kind == "lsgan":
        return 0.5 * (ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake)))
    if kind == "bce":
        return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))
    raise ValueError(f"unknown GAN loss {kind!r}; allowed: {', '.join(GAN_LOSSES)}")


def generator_adversarial_loss(fake_logits, kind: str = "lsgan"):
    """G's adversarial loss L_adv on D's patch logits of (output, I_s) -> scalar.

    ``lsgan``: mean((D(fake) - 1)^2); ``bce``: non-saturating -log sigmoid(D(fake)).
    """
    fake = _f32(fake_logits)
    if kind == "lsgan":
        return ops.mean(ops.square(fake - 1.0))
    if kind == "bce":
        return ops.mean(ops.softplus(-fake))
    raise ValueError(f"unknown GAN loss {kind!r}; allowed: {', '.join(GAN_LOSSES)}")


def triplet_scores(logits, positive, negative):
    """Gather s(i, j+) and s(i, j-) from SCFT logits.

    Args:
        logits: [B, N, M] scaled scores (sketch position i x reference position j).
        positive, negative: int [B, N] reference indices per sketch position.

    Returns:
        ``(s_pos, s_neg)``, float32 [B, N] each.
    """
    logits = _f32(logits)
    s_pos = ops.take_along_axis(logits, ops.cast(positive, "int32")[..., None], axis=-1)[..., 0]
    s_neg = ops.take_along_axis(logits, ops.cast(negative, "int32")[..., None], axis=-1)[..., 0]
    return s_pos, s_neg


def triplet_loss_from_scores(s_pos, s_neg, valid, margin: float = 12.0):
    """max(0, -s_pos + s_neg + margin) averaged over each example's valid positions, then over
    the batch -> scalar. (Per-example means make the loss of a batch split across replicas
    the mean of the replicas' losses.) Examples without valid positions contribute 0."""
    valid = _f32(valid)
    hinge = ops.relu(_f32(s_neg) - _f32(s_pos) + margin)
    per_example = ops.sum(hinge * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)
    return ops.mean(per_example)


TRIPLET_CELLS = ("all", "foreground")


def foreground_cells(images, grid: tuple[int, int], white: float = 0.9, min_fraction: float = 0.1):
    """Which cells of a grid over the images hold drawing, not white paper.

    Args:
        images: float [B, H, W, 3] in [-1, 1] (the training targets); H, W multiples of the grid.
        grid: (h, w) cells, row-major like the SCFT positions.
        white: a pixel whose darkest channel is at or above this is paper (0.9 ~ 242 of 255).
        min_fraction: a cell with at least this fraction of non-paper pixels is foreground.

    Returns:
        float32 [B, h * w], 1.0 for foreground cells.
    """
    h, w = grid
    shape = ops.shape(images)
    ink = _f32(ops.min(_f32(images), axis=-1) < white)
    ink = ops.reshape(ink, (shape[0], h, shape[1] // h, w, shape[2] // w))
    return ops.reshape(_f32(ops.mean(ink, axis=(2, 4)) >= min_fraction), (shape[0], h * w))


def triplet_loss(logits, positive, negative, valid, margin: float = 12.0):
    """L_tr, the similarity-based triplet loss on SCFT logits [B, N, M] (see the two helpers)."""
    s_pos, s_neg = triplet_scores(logits, positive, negative)
    return triplet_loss_from_scores(s_pos, s_neg, valid, margin)


def perceptual_loss(output_features, target_features, weights=None):
    """L_perc: sum over layers of the mean absolute difference of VGG activations -> scalar
    (``weights`` [B]: as in :func:`reconstruction_loss`)."""
    return sum(_mean_over_examples(ops.abs(_f32(a) - _f32(b)), weights)
               for a, b in zip(output_features, target_features))


def gram_matrix(features):
    """Gram matrix of [B, h, w, c] features, normalized by h * w * c -> float32 [B, c, c].

    Computed in float32 (bfloat16 features are exact there). Its gradient is one matmul in the
    features' dtype, ``F (dG + dG^T)``: autodiff would run two float32 matmuls, one per factor,
    and add them, writing two float32 copies of F's size (at VGG's relu1_1 and 256 px, 0.5 GB
    each per batch of 32).
    """
    shape = ops.shape(features)
    flat = ops.reshape(features, (shape[0], -1, shape[-1]))
    norm = ops.cast(shape[1] * shape[2] * shape[3], "float32")
    return _gram(flat) / norm


@ops.custom_gradient
def _gram(flat):
    """F^T F for F [B, n, c] -> float32 [B, c, c]; gradient F (dG + dG^T) in F's dtype."""
    wide = _f32(flat)
    gram = ops.matmul(ops.transpose(wide, (0, 2, 1)), wide)

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream  # torch passes it by keyword
        symmetric = upstream + ops.transpose(upstream, (0, 2, 1))
        return ops.matmul(flat, ops.cast(symmetric, flat.dtype))

    return gram, grad


def style_loss(output_features, target_features, weights=None):
    """L_style: sum over layers of the mean absolute difference of Gram matrices -> scalar
    (``weights`` [B]: as in :func:`reconstruction_loss`)."""
    return sum(_mean_over_examples(ops.abs(gram_matrix(a) - gram_matrix(b)), weights)
               for a, b in zip(output_features, target_features))
