"""``python -m keras_scft``: the ``keras-scft`` command line."""

from keras_scft.cli import main

if __name__ == "__main__":
    main()
