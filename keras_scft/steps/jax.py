"""JAX train/test steps: stateless, one generator forward shared by the D and G updates.

The generator runs once under ``jax.vjp``; D is updated on the stop-gradient output; then
G's losses (with the updated D) are differentiated w.r.t. the generated image and the SCFT
logits and pulled back through the generator's vjp. Non-trainable state (spectral-norm
vectors, batch-norm statistics, augmentation seeds) is carried through.
"""

from __future__ import annotations

import jax


class _State:
    """Variable values of one step, looked up by variable identity."""

    def __init__(self, variables, values):
        self.values = {id(v): x for v, x in zip(variables, values)}

    def get(self, variables):
        return [self.values[id(v)] for v in variables]

    def set(self, variables, values):
        for v, x in zip(variables, values):
            self.values[id(v)] = x


def _call(layer, state, inputs, **kwargs):
    return layer.stateless_call(
        state.get(layer.trainable_variables), state.get(layer.non_trainable_variables), inputs, **kwargs)


def _batch(model, state, data):
    batch = model.split_batch(data)
    if "reference" not in batch:
        if model.augment is None:
            raise ValueError("the batch has no 'reference': pass ready examples, or give the "
                             "model an `augment` layer to build them from images")
        raw = {k: v for k, v in batch.items() if k in ("image", "sketch")}
        batch, seeds = _call(model.augment, state, raw)
        state.set(model.augment.non_trainable_variables, seeds)
    return batch


def _record(model, metrics_variables, values):
    """Stateless metric updates in ``model.metrics`` order; returns (logs, new variables)."""
    new_variables, logs, start = [], {}, 0
    for metric in model.metrics:
        own = metrics_variables[start : start + len(metric.variables)]
        start += len(metric.variables)
        if metric.name in values:
            own = metric.stateless_update_state(own, values[metric.name])
            logs[metric.name] = metric.stateless_result(own)
        new_variables.extend(own)
    return logs, new_variables


def train_step(model, state, data):
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    params = _State(model.trainable_variables, trainable)
    params.values.update(_State(model.non_trainable_variables, non_trainable).values)
    opt = _State(model.optimizer.variables, optimizer_variables)
    generator, discriminator = model.generator, model.discriminator
    batch = model.training_batch(_batch(model, params, data))
    sketch, target = batch["sketch"], batch["target"]
    adversarial = bool(model.loss_weights["adversarial"])

    g_trainable = params.get(generator.trainable_variables)

    def generate(weights):
        outputs, g_state = generator.stateless_call(
            weights, params.get(generator.non_trainable_variables),
            {"sketch": sketch, "reference": batch["reference"]}, training=True)
        return (outputs["image"], outputs["attention_logits"]), g_state

    (image, logits), pullback, g_state = jax.vjp(generate, g_trainable, has_aux=True)
    params.set(generator.non_trainable_variables, g_state)

    d_values = {}
    if adversarial:
        d_inputs = discriminator.non_trainable_variables

        def d_objective(weights):
            d_state = params.get(d_inputs)
            real, d_state = discriminator.stateless_call(weights, d_state, {"image": target, "sketch": sketch}, training=True)
            fake, d_state = discriminator.stateless_call(
                weights, d_state, {"image": jax.lax.stop_gradient(image), "sketch": sketch}, training=True)
            loss, values = model.discriminator_objective(real, fake)
            return loss, (values, d_state)

        d_weights = params.get(discriminator.trainable_variables)
        (_, (d_values, d_state)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(d_weights)
        params.set(d_inputs, d_state)
        d_weights, d_slots = model.d_optimizer.stateless_apply(
            opt.get(model.d_optimizer.variables), d_grads, d_weights)
        params.set(discriminator.trainable_variables, d_weights)
        opt.set(model.d_optimizer.variables, d_slots)

    # The target's VGG features are constants of G's objective: computed outside the
    # differentiated function, they cost one forward pass and no backward pass (a VGG on
    # [output; target] would also run the input-gradient convolutions over the target half).
    target_features = None
    if model.needs_perceptual():
        target_features, _ = _call(model.perceptual, params, target.astype(image.dtype), training=False)

    def g_objective(image, logits):
        fake_logits = None
        if adversarial:
            fake_logits, _ = _call(discriminator, params, {"image": image, "sketch": sketch}, training=False)
        features = None
        if target_features is not None:
            output_features, _ = _call(model.perceptual, params, image, training=False)
            features = (output_features, target_features)
        return model.generator_objective(image, logits, batch, fake_logits, features)

    (_, g_values), cotangents = jax.value_and_grad(g_objective, argnums=(0, 1), has_aux=True)(image, logits)
    (g_grads,) = pullback(cotangents)
    g_trainable, g_slots = model.g_optimizer.stateless_apply(
        opt.get(model.g_optimizer.variables), g_grads, g_trainable)
    params.set(generator.trainable_variables, g_trainable)
    opt.set(model.g_optimizer.variables, g_slots)
    iterations = model.optimizer.iterations
    opt.set([iterations], [opt.get([iterations])[0] + 1])

    logs, metrics_variables = _record(model, metrics_variables, {**d_values, **g_values})
    state = (params.get(model.trainable_variables), params.get(model.non_trainable_variables),
             opt.get(model.optimizer.variables), metrics_variables)
    return logs, state


def test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    params = _State(model.trainable_variables, trainable)
    params.values.update(_State(model.non_trainable_variables, non_trainable).values)
    batch = _batch(model, params, data)
    outputs, _ = _call(model.generator, params, {"sketch": batch["sketch"], "reference": batch["reference"]},
                       training=False)
    logs, metrics_variables = _record(model, metrics_variables, model.evaluation_terms(outputs["image"], batch["target"]))
    return logs, (params.get(model.trainable_variables), params.get(model.non_trainable_variables), metrics_variables)
