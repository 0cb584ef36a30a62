"""Prepare built-in datasets: `python tools/prepare_data.py openmoji [--out DIR] [--size N]`.

Same commands as `keras-scft data`; they live in keras_scft.data.cli.
"""

from keras_scft.data.cli import data_command as main

if __name__ == "__main__":
    main()
