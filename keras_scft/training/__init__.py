"""Training from recipes: checkpoints, callbacks and the ``train`` entry point."""
