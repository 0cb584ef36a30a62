"""Export a trained model for TF Serving: `python tools/export.py MODEL.keras OUT_DIR [--version N]`.

Same command as `keras-scft export`; it lives in keras_scft.cli (logic: keras_scft.export).
"""

from keras_scft.cli import export_command as main

if __name__ == "__main__":
    main()
