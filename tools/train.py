"""Train SCFT from a JSON recipe: python tools/train.py recipes/quickstart.json [-o field=value]."""

from keras_scft.training.cli import main

if __name__ == "__main__":
    main()
