"""``keras-scft train`` / ``python tools/train.py``: train from a JSON recipe."""

from __future__ import annotations

import os
import sys

import click

from keras_scft.recipes import RecipeError, describe, load_recipe

HELP = f"""Train SCFT from RECIPE (a JSON file, see recipes/).

Every field has a default; a recipe lists only what it changes. Restarting the same
command resumes from the newest checkpoint in the run folder (--no-resume starts over
and keeps the old checkpoints until new ones replace them). The backend comes from
KERAS_BACKEND (tensorflow or jax).

Several machines: run the same command on every machine with -o
distribution.strategy=multi_worker. TensorFlow workers read the TF_CONFIG environment
variable; JAX processes take the three options below (or find them under Slurm or Open
MPI). output.dir must be a folder every machine sees (see README).

On JAX, GPU memory is allocated as the run needs it (XLA_PYTHON_CLIENT_PREALLOCATE=false
unless set): JAX's default, reserving 75% of the GPU at the first transfer, cost 1.3-2.3 s
of every start on an H200. Set XLA_PYTHON_CLIENT_PREALLOCATE=true to reserve it anyway.

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
@click.option("--coordinator", metavar="HOST:PORT", default=None,
              help="JAX multi_worker: address of process 0, the same on every process "
                   "(default: $KERAS_DISTRIBUTION_JOB_ADDRESSES, $JAX_COORDINATOR_ADDRESS or the cluster's).")
@click.option("--num-processes", type=click.IntRange(min=1), default=None,
              help="JAX multi_worker: number of processes "
                   "(default: $KERAS_DISTRIBUTION_NUM_PROCESSES or the cluster's).")
@click.option("--process-id", type=click.IntRange(min=0), default=None,
              help="JAX multi_worker: this process's id, 0 .. N-1; 0 is the chief "
                   "(default: $KERAS_DISTRIBUTION_PROCESS_ID or the cluster's).")
def train_command(recipe: str, overrides: tuple[str, ...], resume: bool, quiet: bool, coordinator: str | None,
                  num_processes: int | None, process_id: int | None) -> None:
    # Read when JAX creates its GPU client, at the first transfer: nothing has made one yet.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        config = load_recipe(recipe, list(overrides))
    except RecipeError as error:
        raise click.UsageError(str(error)) from None
    from keras_scft.distribute import DistributionError, ProcessSettings
    from keras_scft.training.callbacks import NonFiniteLossError
    from keras_scft.training.run import train

    processes = ProcessSettings(coordinator, num_processes, process_id)
    try:
        final = train(config, resume=resume, progress=not quiet, processes=processes)
    except (RecipeError, DistributionError) as error:
        raise click.UsageError(str(error)) from None
    except NonFiniteLossError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(3)
    shown = {k: round(v, 4) for k, v in final.items() if isinstance(v, float)}
    click.echo(f"final metrics: {shown}")


def main() -> None:
    train_command()
