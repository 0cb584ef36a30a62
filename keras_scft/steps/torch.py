"""PyTorch backend: inference works (the layers are backend-agnostic); training does not."""


def train_step(model, data):
    raise NotImplementedError(
        "ColorizerModel.fit is not supported on the torch backend; train with KERAS_BACKEND=jax "
        "or tensorflow. Inference (model(...), predict) works on torch."
    )


test_step = train_step
