"""The model's one optimizer object over the generator's and the discriminator's Adams.

Keras' ``MultiOptimizer`` lists every slot variable of its inner optimizers among its own
``variables``, so a model that also keeps the inner optimizers as attributes (``g_optimizer``,
``d_optimizer``, which ``fit`` code and users address) saved every Adam moment twice: once
under ``g_optimizer/`` / ``d_optimizer/`` and again under ``optimizer/``, 39% of an OpenMoji
checkpoint (656 of 1,681 MB). :class:`GANOptimizer` saves only what it owns itself (its step
counter); the inner optimizers save their slots.
"""

from __future__ import annotations

import keras
from keras import ops
from keras.optimizers import MultiOptimizer


class GANOptimizer(MultiOptimizer):
    """A ``MultiOptimizer`` whose saved state is its step counter alone (see the module).

    Checkpoints written before (every inner slot also under ``optimizer/``) still load.
    """

    def _own_variables(self) -> list:
        inner = {id(v) for opt in self.optimizers for v in opt.variables}
        return [v for v in self.variables if id(v) not in inner]

    def save_own_variables(self, store) -> None:
        for i, variable in enumerate(self._own_variables()):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store) -> None:
        if len(store.keys()) == len(self.variables):  # an older checkpoint: every slot here too
            super().load_own_variables(store)
            return
        own = self._own_variables()
        if len(store.keys()) != len(own):
            raise ValueError(f"optimizer state has {len(store.keys())} arrays; this model's optimizer "
                             f"owns {len(own)} (its step counter) and {len(self.variables)} in all")
        for i, variable in enumerate(own):
            variable.assign(store[str(i)])

    def finalize_variable_values(self, var_list) -> None:
        """At the end of ``fit``: an optimizer with ``use_ema`` writes its moving averages into
        the model's variables. On JAX ``assign`` makes each variable hold the average's own
        array, so the two share one buffer and the next ``fit``'s train step, which donates
        both, fails ("Attempt to donate the same buffer twice"); each variable gets a copy."""
        super().finalize_variable_values(var_list)
        if keras.backend.backend() == "jax" and any(opt.use_ema for opt in self.optimizers):
            for variable in var_list:
                variable.assign(ops.copy(variable.value))
