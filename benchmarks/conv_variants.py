"""Milliseconds of the few-channel full-resolution 3x3 convolutions, computed in several ways.

    KERAS_BACKEND=jax python benchmarks/conv_variants.py --size 256 --out conv_variants.jsonl

For each convolution shape of the generator's 256x256 layers (and the VGG's first two), times
the forward pass at the inference batch and forward + backward (input and kernel gradients)
at the training batch, in bfloat16, for: ``plain`` (``keras.ops.conv``), ``pad8`` (channels
zero-padded to 8, ChannelPaddedConv2D), ``s2d`` (on the 2x2 space-to-depth blocks,
keras_scft.layers.space_to_depth_conv), ``s2d_pad16`` (s2d with the block channels padded
to 16) and ``patch`` (:func:`patch_matmul_conv`: one matmul over the 3x3 patches, im2col).
The VGG's convolutions are frozen, so their rows also time forward + input gradient alone.
``chain`` rows time two conv -> instance norm -> LeakyReLU blocks (an encoder's first two) so
that the rearrangements' cost next to the norms shows. Prints one JSON line each.

    KERAS_BACKEND=jax python benchmarks/conv_variants.py --shapes vgg --variants plain,pad8,patch --no-chain
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SHAPES = {  # name: (input channels, output channels)
    "sketch_block0 1->16": (1, 16),
    "block1/decoder_s3b 16->16": (16, 16),
    "reference_block0 3->16": (3, 16),
    "decoder_rgb 16->3": (16, 3),
    "vgg_conv1_1 3->64": (3, 64),
    "vgg_conv1_2 64->64": (64, 64),
}


def patch_matmul_conv(inputs, kernel, multiple: int = 8):
    """``keras.ops.conv(inputs, kernel, padding="same")`` (stride 1, channels last) as one matmul:
    the kh * kw shifted views of the zero-padded input stacked on the channel axis in the
    kernel's (row, column, channel) order, zero-padded to a multiple of ``multiple`` channels,
    times the kernel as a [kh * kw * C (padded), F] matrix. inputs [B, H, W, C], kernel
    [kh, kw, C, F] -> [B, H, W, F]. Tried for the VGG's 3 -> 64 first conv (docs/benchmarks.md)."""
    from keras import ops

    kh, kw, channels, filters = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2  # Keras/TF "same" at stride 1
    padded = ops.pad(inputs, [[0, 0], [top, kh - 1 - top], [left, kw - 1 - left], [0, 0]])
    batch, height, width = ops.shape(inputs)[:3]
    views = [padded[:, i : i + height, j : j + width, :] for i in range(kh) for j in range(kw)]
    depth = kh * kw * channels
    extra = -depth % multiple
    if extra:
        views.append(ops.zeros((batch, height, width, extra), dtype=inputs.dtype))
    matrix = ops.pad(ops.reshape(kernel, (depth, filters)), [[0, extra], [0, 0]])
    out = ops.matmul(ops.reshape(ops.concatenate(views, axis=-1), (-1, depth + extra)), matrix)
    return ops.reshape(out, (batch, height, width, filters))


def variants():
    from keras import ops

    from keras_scft.layers.padded_conv import channel_padded_conv
    from keras_scft.layers.space_to_depth_conv import space_to_depth_conv

    def plain(x, kernel):
        return ops.conv(x, kernel, padding="same")

    def padded(multiple):
        return lambda x, kernel: channel_padded_conv(x, kernel, multiple, plain)

    return {
        "plain": plain,
        "pad8": padded(8),
        "s2d": lambda x, k: space_to_depth_conv(x, k, conv=plain),
        "s2d_pad16": lambda x, k: space_to_depth_conv(x, k, conv=padded(16)),
        "patch": patch_matmul_conv,
    }


def instance_norm_lrelu(x):
    from keras import ops

    x32 = ops.cast(x, "float32")
    mean = ops.mean(x32, axis=(1, 2), keepdims=True)
    var = ops.var(x32, axis=(1, 2), keepdims=True)
    y = (x32 - mean) * ops.rsqrt(var + 1e-5)
    return ops.cast(ops.leaky_relu(y, 0.2), x.dtype)


def timed(fn, args, steps: int) -> float:
    import jax

    out = fn(*args)
    jax.block_until_ready(out)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--infer-batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--shapes", default="", help="only the shapes whose name contains this text")
    parser.add_argument("--variants", default="", help="comma list of variants (default: all)")
    parser.add_argument("--no-chain", action="store_true", help="skip the encoder-block chain rows")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    device = f"{jax.devices()[0].platform}:{getattr(jax.devices()[0], 'device_kind', '?')}"
    rows = []

    def record(row):
        row.update(device=device, size=args.size)
        rows.append(row)
        print(json.dumps(row), flush=True)

    chosen = {k: v for k, v in variants().items() if not args.variants or k in args.variants.split(",")}
    for name, (cin, cout) in SHAPES.items():
        if args.shapes not in name:
            continue
        kernel = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) * 0.1, jnp.bfloat16)
        modes = [("forward", args.infer_batch), ("forward+backward", args.train_batch)]
        if name.startswith("vgg"):
            modes.append(("forward+input gradient", args.train_batch))
        for mode, batch in modes:
            x = jnp.asarray(rng.normal(size=(batch, args.size, args.size, cin)), jnp.bfloat16)
            cot = jnp.asarray(rng.normal(size=(batch, args.size, args.size, cout)), jnp.bfloat16)
            for variant, conv in chosen.items():
                if mode == "forward":
                    fn = jax.jit(conv)
                    call = (x, kernel)
                elif mode == "forward+backward":
                    def fwd_bwd(x, kernel, cot, conv=conv):
                        out, vjp = jax.vjp(conv, x, kernel)
                        return vjp(cot)
                    fn = jax.jit(fwd_bwd)
                    call = (x, kernel, cot)
                else:
                    def fwd_input_grad(x, kernel, cot, conv=conv):
                        out, vjp = jax.vjp(lambda x: conv(x, kernel), x)
                        return vjp(cot)
                    fn = jax.jit(fwd_input_grad)
                    call = (x, kernel, cot)
                record({"shape": name, "mode": mode, "batch": batch, "variant": variant,
                        "ms": round(timed(fn, call, args.steps), 4)})

    for mode, batch in () if args.no_chain else (("forward", args.infer_batch), ("forward+backward", args.train_batch)):
        chain_rows(record, rng, mode, batch, args)
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def chain_rows(record, rng, mode: str, batch: int, args) -> None:
    """Two encoder blocks (1 -> 16 -> 16), each conv -> instance norm -> LeakyReLU, plain and s2d."""
    import jax
    import jax.numpy as jnp

    k0 = jnp.asarray(rng.normal(size=(3, 3, 1, 16)) * 0.1, jnp.bfloat16)
    k1 = jnp.asarray(rng.normal(size=(3, 3, 16, 16)) * 0.1, jnp.bfloat16)
    x = jnp.asarray(rng.normal(size=(batch, args.size, args.size, 1)), jnp.bfloat16)
    cot = jnp.asarray(rng.normal(size=(batch, args.size, args.size, 16)), jnp.bfloat16)
    for variant in ("plain", "s2d"):
        conv = variants()[variant]

        def chain(x, k0, k1, conv=conv):
            return instance_norm_lrelu(conv(instance_norm_lrelu(conv(x, k0)), k1))
        if mode == "forward":
            fn, call = jax.jit(chain), (x, k0, k1)
        else:
            def fwd_bwd(x, k0, k1, cot, chain=chain):
                out, vjp = jax.vjp(chain, x, k0, k1)
                return vjp(cot)
            fn, call = jax.jit(fwd_bwd), (x, k0, k1, cot)
        record({"shape": "chain encoder block0+1 (conv-norm-lrelu x2)", "mode": mode, "batch": batch,
                "variant": variant, "ms": round(timed(fn, call, args.steps), 4)})


if __name__ == "__main__":
    main()
