"""How sharp SCFT's attention is and whether it lands on the right reference cell, in-graph
(``keras.ops``), for the training logs.

The same question as :mod:`keras_scft.metrics.correspondence` (which scores held-out images
in numpy), asked of every training batch so the learning curves show it: runs whose attention
turns sharp on the wrong cells can be seen early.
"""

from __future__ import annotations

from keras import ops


def attention_statistics(logits, correspondence, valid) -> dict:
    """Attention statistics of a batch, averaged over its valid sketch cells.

    Args:
        logits: [B, N, M] scaled SCFT scores (sketch cell i x reference cell j); the attention
            weights are their softmax over M.
        correspondence: int [B, N] the reference cell that shows sketch cell i.
        valid: [B, N] nonzero where ``correspondence`` exists.

    Returns:
        ``{"attn_peak": ..., "attn_hit": ...}`` float32 scalars: the mean largest attention
        weight of a valid sketch cell, in [1/M, 1] (1: all weight on one cell), and the share
        of valid sketch cells whose largest weight is on the corresponding cell (chance ~1/M;
        the training-batch ``exact`` of ``correspondence``). 0 when no cell is valid.
    """
    logits = ops.cast(logits, "float32")
    valid = ops.cast(ops.not_equal(valid, 0), "float32")
    count = ops.maximum(ops.sum(valid), 1.0)
    # the largest softmax weight is exp(max - max) / sum_j exp(l_j - max) = exp(max - logsumexp)
    peak = ops.exp(ops.max(logits, axis=-1) - ops.logsumexp(logits, axis=-1))
    hit = ops.cast(ops.equal(ops.argmax(logits, axis=-1), ops.cast(correspondence, "int32")), "float32")
    return {"attn_peak": ops.sum(peak * valid) / count, "attn_hit": ops.sum(hit * valid) / count}
