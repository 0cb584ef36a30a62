"""``keras-scft train`` / ``python tools/train.py``: train from a JSON recipe."""

from __future__ import annotations

import sys

import click

from keras_scft.recipes import RecipeError, describe, load_recipe

HELP = f"""Train SCFT from RECIPE (a JSON file, see recipes/).

Every field has a default; a recipe lists only what it changes. Restarting the same
command resumes from the newest checkpoint in the run folder (--no-resume starts over
and keeps the old checkpoints until new ones replace them). The backend comes from
KERAS_BACKEND (tensorflow or jax).

\b
Recipe fields (dotted name = default):
{describe()}
"""


@click.command("train", help=HELP)
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--override", "-o", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Set a recipe field, e.g. -o train.steps=500 -o model.widths=[8,8,16,16,32,32,64,64,64,64] "
                   "(values are JSON; plain words are strings). Repeatable.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from the newest checkpoint of the run folder.")
@click.option("--quiet", is_flag=True, help="One line per log interval instead of a progress bar.")
def train_command(recipe: str, overrides: tuple[str, ...], resume: bool, quiet: bool) -> None:
    try:
        config = load_recipe(recipe, list(overrides))
    except RecipeError as error:
        raise click.UsageError(str(error)) from None
    from keras_scft.training.callbacks import NonFiniteLossError
    from keras_scft.training.run import train

    try:
        final = train(config, resume=resume, progress=not quiet)
    except RecipeError as error:
        raise click.UsageError(str(error)) from None
    except NonFiniteLossError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(3)
    shown = {k: round(v, 4) for k, v in final.items() if isinstance(v, float)}
    click.echo(f"final metrics: {shown}")


def main() -> None:
    train_command()
