"""The JAX train step (one generator forward shared through ``jax.vjp``, the perceptual
network's target pass kept out of differentiation, state threaded by hand) against a plain
formulation of the same step: the generator recomputed inside ``jax.value_and_grad``, the
VGG run on [output; target] in one batch. Speed work on the step must not change its math."""

import keras
import numpy as np
import pytest

from tests.helpers import requires_backend, tiny_colorizer
from tests.test_model import _examples

pytestmark = [pytest.mark.multi_backend, requires_backend("jax")]


def _values(variables):
    return [v.value for v in variables]


def plain_step(model, x, y):
    """One training step written the straightforward way; returns (terms, G weights, D weights)."""
    import jax
    import jax.numpy as jnp

    G, D, P = model.generator, model.discriminator, model.perceptual
    batch = {**x, **y}
    sketch, target = jnp.asarray(batch["sketch"]), jnp.asarray(batch["target"])
    inputs = {"sketch": sketch, "reference": jnp.asarray(batch["reference"])}
    g_weights, g_state = _values(G.trainable_variables), _values(G.non_trainable_variables)
    d_weights, d_state = _values(D.trainable_variables), _values(D.non_trainable_variables)

    image = jax.jit(lambda w: G.stateless_call(w, g_state, inputs, training=True)[0]["image"])(g_weights)

    def d_loss(weights):
        real, state = D.stateless_call(weights, d_state, {"image": target, "sketch": sketch}, training=True)
        fake, state = D.stateless_call(weights, state, {"image": image, "sketch": sketch}, training=True)
        loss, terms = model.discriminator_objective(real, fake)
        return loss, (terms, state)

    (_, (d_terms, d_state)), d_grads = jax.jit(jax.value_and_grad(d_loss, has_aux=True))(d_weights)
    d_new, _ = model.d_optimizer.stateless_apply(_values(model.d_optimizer.variables), d_grads, d_weights)

    def g_loss(weights):
        outputs, _ = G.stateless_call(weights, g_state, inputs, training=True)
        out = outputs["image"]
        fake, _ = D.stateless_call(d_new, d_state, {"image": out, "sketch": sketch}, training=False)
        both, _ = P.stateless_call(_values(P.trainable_variables), _values(P.non_trainable_variables),
                                   jnp.concatenate([out, target]), training=False)
        n = out.shape[0]
        features = ([f[:n] for f in both], [f[n:] for f in both])
        return model.generator_objective(out, outputs["attention_logits"], batch, fake, features)

    (_, g_terms), g_grads = jax.jit(jax.value_and_grad(g_loss, has_aux=True))(g_weights)
    g_new, _ = model.g_optimizer.stateless_apply(_values(model.g_optimizer.variables), g_grads, g_weights)
    return {**d_terms, **g_terms}, g_new, d_new


def test_train_step_equals_the_plain_step():
    """Plain SGD with rate 1, so each weight moves by exactly its gradient (Adam's first step
    moves every weight by about the learning rate whatever the gradient: float noise on a
    near-zero gradient would decide its sign)."""
    model = tiny_colorizer(perceptual={"arch": "vgg16", "weights": None, "layers": ["relu1_2", "relu2_2"]})
    model.compile(g_optimizer=keras.optimizers.SGD(1.0), d_optimizer=keras.optimizers.SGD(1.0))
    x, y = _examples()
    terms, g_new, d_new = plain_step(model, x, y)
    before = {id(v): np.array(v.value) for v in model.trainable_variables}
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(terms) >= {"rec", "adv", "tr", "perc", "style", "loss_g", "loss_d"}
    for name, value in terms.items():
        assert logs[name] == pytest.approx(float(value), rel=1e-4, abs=1e-6), name
    for plain, variables in ((g_new, model.generator.trainable_variables),
                             (d_new, model.discriminator.trainable_variables)):
        for expected, variable in zip(plain, variables):
            want = np.asarray(expected) - before[id(variable)]  # minus the plain gradient
            got = keras.ops.convert_to_numpy(variable) - before[id(variable)]
            scale = max(float(np.max(np.abs(want))), 1e-8)
            assert scale > 0 and np.max(np.abs(got - want)) <= 1e-3 * scale + 1e-7, variable.path
