"""FID and KID on pool_3 features of the FID Inception network.

Preprocessing follows clean-fid's "clean" mode (Parmar et al., "On Aliased Resizing and
Surprising Subtleties in GAN Evaluation", CVPR 2022), so real and generated images go through
exactly the same steps:

1. quantize to uint8: uint8 images pass through; float images in [-1, 1] (generator output)
   become ``round((x + 1) * 127.5)``, as when they are saved as PNG, so real and generated
   images are quantized alike;
2. resize to 299x299 with PIL's antialiased bicubic filter, each channel as float32
   (``mode "F"``), clipped to [0, 255] and *not* re-quantized; images already 299x299 are
   left alone;
3. the network normalizes with ``(x - 128) / 128`` itself.

FID uses pytorch-fid's ``calculate_frechet_distance``; KID is the unbiased polynomial-kernel
MMD^2 of torch-fidelity / clean-fid, kernel ``(x . y / d + 1) ** 3``, averaged over random
subsets. Report the sample counts with every number: FID is biased and depends strongly on N.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
from PIL import Image
from scipy import linalg
from tqdm import tqdm

from keras_scft.metrics.inception import INCEPTION_SIZE, fid_inception

Images = np.ndarray | Iterable[np.ndarray]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` as is; float in [-1, 1] -> uint8 ``round((x + 1) * 127.5)``."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected RGB images [N, H, W, 3], got shape {images.shape}; "
            "repeat grayscale images to 3 channels with np.repeat(x, 3, axis=-1)."
        )
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"expected uint8 images in [0, 255] or float images in [-1, 1], got {images.dtype}"
        )
    low, high = float(images.min()), float(images.max())
    if not (low >= -1.001 and high <= 1.001):  # also catches NaN
        raise ValueError(
            f"float images must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]; "
            "pass images in [0, 255] as np.uint8."
        )
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def resize_for_inception(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 299, 299, 3]`` in [0, 255] (clean-fid "clean").

    PIL bicubic (antialiased when shrinking) on each channel as float32, clipped to [0, 255],
    not re-quantized.
    """
    size = (INCEPTION_SIZE, INCEPTION_SIZE)
    if images.shape[1:3] == size:
        return images.astype(np.float32)
    out = np.empty((len(images), *size, 3), np.float32)
    for i, image in enumerate(images):
        for c in range(3):
            channel = Image.fromarray(image[..., c].astype(np.float32))  # mode "F"
            out[i, ..., c] = np.asarray(channel.resize(size, Image.Resampling.BICUBIC))
    return np.clip(out, 0.0, 255.0, out=out)


def preprocess_images(images: np.ndarray) -> np.ndarray:
    """Images ``[N, H, W, 3]`` (uint8, or float in [-1, 1]) -> network input.

    Returns float32 ``[N, 299, 299, 3]`` in [0, 255]: :func:`to_uint8`, then
    :func:`resize_for_inception`.
    """
    return resize_for_inception(to_uint8(images))


def _fixed_size_batches(images: Images, batch_size: int) -> Iterator[np.ndarray]:
    """Preprocessed batches of exactly ``batch_size`` images (the last may be shorter)."""
    source = (
        (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        if isinstance(images, np.ndarray)
        else images
    )
    pending: list[np.ndarray] = []
    count = 0
    for batch in source:
        pending.append(preprocess_images(batch))
        count += len(pending[-1])
        while count >= batch_size:
            joined = np.concatenate(pending)
            yield joined[:batch_size]
            pending, count = [joined[batch_size:]], count - batch_size
    if count:
        yield np.concatenate(pending)


def inception_features(
    images: Images,
    model: keras.Model | None = None,
    batch_size: int = 50,
    progress: bool | None = None,
) -> np.ndarray:
    """pool_3 features of a set of images -> float32 ``[N, 2048]``.

    ``images``: an array ``[N, H, W, 3]`` or an iterable of such batches (any sizes, e.g. a
    tf.data dataset's ``as_numpy_iterator()``), uint8 in [0, 255] or float in [-1, 1]; see the
    module docstring for the preprocessing. ``model`` defaults to ``fid_inception("fid")``; the
    network always sees batches of ``batch_size`` (the last one zero-padded) so it is traced
    once. ``progress`` shows a tqdm bar (default: unless ``$KERAS_SCFT_QUIET`` is set).
    """
    model = fid_inception("fid") if model is None else model
    if isinstance(images, np.ndarray):
        batch_size = max(1, min(batch_size, len(images)))
    if progress is None:
        progress = not os.environ.get("KERAS_SCFT_QUIET")
    total = len(images) if isinstance(images, np.ndarray) else None
    features = []
    with tqdm(total=total, unit="img", desc="inception features", disable=not progress) as bar:
        for batch in _fixed_size_batches(images, batch_size):
            n = len(batch)
            if n < batch_size:
                batch = np.concatenate(
                    [batch, np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)]
                )
            features.append(np.asarray(model.predict_on_batch(batch))[:n])
            bar.update(n)
    if not features:
        raise ValueError("no images to compute Inception features of: the image set is empty.")
    return np.concatenate(features).astype(np.float32)


@dataclass(frozen=True)
class FeatureStats:
    """Gaussian fit of ``n`` features: ``mu`` float64 ``[D]``, ``sigma`` float64 ``[D, D]``."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def from_features(cls, features: np.ndarray) -> FeatureStats:
        """Mean and covariance (``np.cov``, N - 1 normalization) of features ``[N, D]``."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2 or len(features) < 2:
            raise ValueError(
                f"need features [N >= 2, D] for a covariance, got shape {features.shape}"
            )
        return cls(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance of two Gaussians: ``|mu1 - mu2|^2 + Tr(s1 + s2 - 2 sqrt(s1 s2))``.

    Same computation as pytorch-fid's ``calculate_frechet_distance``: if the matrix square root
    is not finite (singular product), ``eps * I`` is added to both covariances; a small imaginary
    part from numerical error is dropped, a large one (> 1e-3 on the diagonal) raises.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are expected for N < D; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            warnings.warn(
                f"FID: singular covariance product; adding {eps} to the diagonals", stacklevel=2
            )
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"FID: matrix square root has imaginary component {np.max(np.abs(covmean.imag))}"
            )
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


class KIDResult(NamedTuple):
    """Kernel Inception Distance: mean and standard deviation over subsets (None when every
    subset is the whole of both sets: the spread is then zero by construction, no error bar)."""

    mean: float
    std: float | None


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples ``[m, D]`` with kernel ``(x . y / D + 1) ** 3``."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return float(within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDResult:
    """KID of two feature sets ``[N1, D]``, ``[N2, D]`` (torch-fidelity / clean-fid estimator).

    Each of ``subsets`` rounds draws ``min(subset_size, N1, N2)`` rows of each set without
    replacement and computes the unbiased polynomial-kernel MMD^2; returns its mean and
    (population) std, or None when ``subset_size`` covers both sets (each round is then the
    same computation; torch-fidelity and clean-fid report a std of 0 there, which reads like
    a certainty it is not). Values are usually quoted x 1e3. Deterministic for a ``seed``.
    """
    x_all, y_all = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
        raise ValueError(
            f"expected features [N1, D] and [N2, D], got {x_all.shape} and {y_all.shape}"
        )
    m = min(subset_size, len(x_all), len(y_all))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x_all)} and {len(y_all)}")
    rng = np.random.default_rng(seed)
    values = [
        _polynomial_mmd2(
            x_all[rng.choice(len(x_all), m, replace=False)],
            y_all[rng.choice(len(y_all), m, replace=False)],
        )
        for _ in range(subsets)
    ]
    whole = m == len(x_all) == len(y_all)
    return KIDResult(float(np.mean(values)), None if whole else float(np.std(values)))


@dataclass(frozen=True)
class FIDResult:
    """FID (and KID) of a generated set against a real set, with both sample counts."""

    fid: float
    n_real: int
    n_fake: int
    kid: float | None = None
    kid_std: float | None = None

    def __str__(self) -> str:
        text = f"FID {self.fid:.3f} (n_real={self.n_real}, n_fake={self.n_fake})"
        if self.kid is not None:
            spread = "" if self.kid_std is None else f" +- {self.kid_std * 1e3:.3f}"
            text += f", KID x1e3 {self.kid * 1e3:.3f}{spread}"
        return text


class FIDScorer:
    """Scores generated image sets against one real set whose features are computed once.

    >>> scorer = FIDScorer.from_images(real_images, cache="runs/real_features.npz")
    >>> print(scorer.score(generated_images))  # FID 23.1 (n_real=500, n_fake=500), KID ...
    """

    def __init__(
        self, real_features: np.ndarray, model: keras.Model | None = None, batch_size: int = 50
    ):
        """``real_features``: float ``[N, 2048]`` pool_3 features of the real images."""
        self.real_features = np.asarray(real_features, np.float32)
        self.real_stats = FeatureStats.from_features(self.real_features)
        self.batch_size = batch_size
        self._model = model

    @property
    def model(self) -> keras.Model:
        """The feature extractor (``fid_inception("fid")``, built on first use)."""
        if self._model is None:
            self._model = fid_inception("fid")
        return self._model

    @classmethod
    def from_images(
        cls,
        real_images: Images,
        cache: os.PathLike | str | None = None,
        model: keras.Model | None = None,
        batch_size: int = 50,
    ) -> FIDScorer:
        """Compute the real set's features, or load them from ``cache`` (an ``.npz``) if it exists.

        The cache holds ``features`` plus pytorch-fid-style ``mu`` and ``sigma``. Delete it when
        the real set or the preprocessing changes.
        """
        path = Path(cache) if cache is not None else None
        if path is not None and path.exists():
            with np.load(path) as data:
                features = data["features"]
            if isinstance(real_images, np.ndarray) and len(real_images) != len(features):
                raise ValueError(
                    f"{path} holds features of {len(features)} real images but {len(real_images)} "
                    "were given; delete the cache file to recompute it."
                )
            return cls(features, model, batch_size)
        model = fid_inception("fid") if model is None else model
        scorer = cls(inception_features(real_images, model, batch_size), model, batch_size)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            with open(partial, "wb") as f:  # a file object: np.savez keeps the name as given
                stats = scorer.real_stats
                np.savez(f, features=scorer.real_features, mu=stats.mu, sigma=stats.sigma)
            partial.replace(path)
        return scorer

    def score(
        self, fake_images: Images, kid_subsets: int = 100, kid_subset_size: int = 1000
    ) -> FIDResult:
        """FID and KID of ``fake_images`` against the real set.

        ``fake_images``: as for :func:`inception_features` (uint8, or float in [-1, 1]).
        """
        fake = inception_features(fake_images, self.model, self.batch_size)
        fake_stats = FeatureStats.from_features(fake)
        real = self.real_stats
        fid = frechet_distance(real.mu, real.sigma, fake_stats.mu, fake_stats.sigma)
        kernel = kid(self.real_features, fake, kid_subsets, kid_subset_size)
        return FIDResult(fid, real.n, fake_stats.n, kernel.mean, kernel.std)
