"""Appearance transform a(.): a random shift of each RGB channel, giving I_gt = a(I).

Images are float in [-1, 1]; the shift is drawn uniformly from [-max_shift, max_shift]
independently per image and channel and the result is clipped back to [-1, 1]. The public
SCFT reimplementations use max_shift = 1 (half the value range).

With ``keep_white`` the shift fades out on near-white pixels (the paper of line art and
emoji): the target's and the reference's background stay white, so the model is never asked
to paint the background in the reference's colours.
"""

from __future__ import annotations

from keras_scft.augment.backend import Backend, Uniform


def sample_color_shift(uniform: Uniform, batch_size, max_shift: float = 1.0):
    """Per-image, per-channel shifts: float32 [batch_size, 3] in [-max_shift, max_shift]."""
    return uniform((batch_size, 3), -max_shift, max_shift)


WHITE_RAMP = (0.7, 0.9)
"""``keep_white``: full shift below this darkest-channel value ([-1, 1] units; ~217 of 255),
none above the second (~242), linear in between (anti-aliased edges get part of it)."""


def color_shift(B: Backend, images, shift, keep_white=False):
    """Apply a(.): images float [N, H, W, 3] in [-1, 1], shift [N, 3] -> [N, H, W, 3] in [-1, 1].

    ``keep_white``: scale the shift by how far a pixel's darkest channel is below white
    (:data:`WHITE_RAMP`), so white stays white. A Python bool applies to every image; a
    boolean [N] tensor chooses per image.
    """
    shift = shift[:, None, None, :]
    if keep_white is False:
        return B.numpy.clip(images + shift, -1.0, 1.0)
    darkest = B.numpy.minimum(B.numpy.minimum(images[..., 0:1], images[..., 1:2]), images[..., 2:3])
    low, high = WHITE_RAMP
    fade = B.numpy.clip((high - darkest) / (high - low), 0.0, 1.0)
    if keep_white is not True:
        fade = B.numpy.where(keep_white[:, None, None, None], fade, 1.0)
    return B.numpy.clip(images + shift * fade, -1.0, 1.0)
