"""TensorFlow train/test steps: two GradientTapes, works under MirroredStrategy.

Losses are divided by the number of replicas before differentiation (Keras sums gradients
across replicas, so the update follows the global-batch mean); metrics get unscaled values.
"""

from __future__ import annotations

import tensorflow as tf


def _batch(model, data):
    batch = model.split_batch(data)
    if "reference" not in batch:
        if model.augment is None:
            raise ValueError("the batch has no 'reference': pass ready examples, or give the "
                             "model an `augment` layer to build them from images")
        batch = model.augment({k: v for k, v in batch.items() if k in ("image", "sketch")})
    return batch


def _record(model, values):
    logs = {}
    for name, value in values.items():
        tracker = model._trackers[name]
        tracker.update_state(value)
        logs[name] = tracker.result()
    return logs


def train_step(model, data):
    batch = model.training_batch(_batch(model, data))
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    generator, discriminator = model.generator, model.discriminator
    sketch, target = batch["sketch"], batch["target"]
    adversarial = bool(model.loss_weights["adversarial"])
    with tf.GradientTape() as g_tape:
        outputs = generator({"sketch": sketch, "reference": batch["reference"]}, training=True)
        image, logits = outputs["image"], outputs["attention_logits"]
        d_values = {}
        if adversarial:
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_logits = discriminator({"image": target, "sketch": sketch}, training=True)
                    fake_logits = discriminator({"image": tf.stop_gradient(image), "sketch": sketch}, training=True)
                    d_loss, d_values = model.discriminator_objective(real_logits, fake_logits)
                    scaled = d_loss / replicas
                d_vars = discriminator.trainable_variables
                model.d_optimizer.apply(d_tape.gradient(scaled, d_vars), d_vars)
        # G's adversarial term uses D after its update, on the same generated batch.
        fake_logits = discriminator({"image": image, "sketch": sketch}) if adversarial else None
        features = None
        if model.needs_perceptual():
            with g_tape.stop_recording():  # constants of G's loss: one forward pass, no backward
                target_features = model.perceptual(tf.cast(target, image.dtype))
            features = (model.perceptual(image), target_features)
        g_loss, g_values = model.generator_objective(image, logits, batch, fake_logits, features)
        scaled = g_loss / replicas
    g_vars = generator.trainable_variables
    model.g_optimizer.apply(g_tape.gradient(scaled, g_vars), g_vars)
    model.optimizer.iterations.assign_add(1)
    return _record(model, {**d_values, **g_values})


def test_step(model, data):
    batch = _batch(model, data)
    image = model({"sketch": batch["sketch"], "reference": batch["reference"]}, training=False)
    return _record(model, model.evaluation_terms(image, batch["target"]))
