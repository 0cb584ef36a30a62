"""The README's first command: prepare the built-in data, train briefly, colorize, write a grid.

    python tools/quickstart.py [--recipe recipes/quickstart.json] [--count 8]

1. renders OpenMoji into data/openmoji if it is not there (one time, about a minute);
2. trains recipes/quickstart.json (resumes/finishes instantly if already trained);
3. colorizes held-out (test split) real line art with (a) the color image of *another*
   held-out emoji as reference and (b) a TPS-warped, color-shifted copy of its own color
   image, and writes runs/quickstart/quickstart_grid.png with the columns
   line art | other reference | result | own warped reference | result | ground truth.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


@click.command(help=__doc__)
@click.option("--recipe", default="recipes/quickstart.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--count", default=8, show_default=True, type=click.IntRange(1, 64), help="Rows in the grid.")
@click.option("--override", "-o", "overrides", multiple=True, metavar="FIELD=VALUE", help="Recipe overrides.")
def main(recipe: str, count: int, overrides: tuple[str, ...]) -> None:
    from keras_scft.data.pipeline import load_arrays
    from keras_scft.data.sources import OpenMojiSource
    from keras_scft.grids import image_grid, save_png
    from keras_scft.inference import colorize, load_generator
    from keras_scft.recipes import RecipeError, load_recipe
    from keras_scft.training.run import build_augment, train

    try:
        config = load_recipe(recipe, list(overrides))
    except RecipeError as error:
        raise click.UsageError(str(error)) from None
    train(config)
    run_dir = Path(config["output"]["dir"] or Path("runs") / config["name"])
    generator = load_generator(run_dir / "generator.keras")
    size = config["data"]["image_size"]
    test = load_arrays(OpenMojiSource(config["data"]["root"], "test"), size, progress=False)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(test["image"]), size=count, replace=False)
    line, color = test["sketch"][rows], test["image"][rows]
    other = test["image"][np.roll(rows, 1)]  # another held-out emoji's colors
    # the recipe's own colour shift and warp, so the self-reference columns show the task it trained on
    own = build_augment(config, generator.stride, seed=0).example_from_numpy(color, rng)
    own_reference = np.clip(np.rint((own["reference"] + 1) * 127.5), 0, 255).astype(np.uint8)
    own_target = np.clip(np.rint((own["target"] + 1) * 127.5), 0, 255).astype(np.uint8)
    with_other = colorize(generator, line, other)
    with_own = colorize(generator, line, own_reference)
    grid = image_grid([line, other, with_other, own_reference, with_own, own_target])
    path = run_dir / "quickstart_grid.png"
    save_png(path, grid)
    click.echo(f"wrote {path}  (columns: line art | other reference | result | own warped "
               "reference | result | ground truth)")


if __name__ == "__main__":
    main()
