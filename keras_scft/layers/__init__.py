"""Keras layers and networks of SCFT. Importing this registers them for ``.keras`` loading."""

from keras_scft.layers.decoder import unet_decode
from keras_scft.layers.discriminator import PatchDiscriminator, build_discriminator
from keras_scft.layers.encoder import SCFTEncoder
from keras_scft.layers.filter_major_conv import FilterMajorConv2D
from keras_scft.layers.generator import SCFTGenerator, build_generator
from keras_scft.layers.instance_norm import InstanceNormalization
from keras_scft.layers.padded_conv import ChannelPaddedConv2D
from keras_scft.layers.pooling import BlockAveragePooling2D, BlockMaxPooling2D
from keras_scft.layers.residual import ResidualBlock
from keras_scft.layers.scft import SCFTAttention
from keras_scft.layers.spectral_norm import SpectralNormConv2D
from keras_scft.layers.upsample_conv import UpsampleConcatConv2D
from keras_scft.layers.vgg import VGGPreprocessing, build_vgg_features

__all__ = [
    "BlockAveragePooling2D", "BlockMaxPooling2D", "ChannelPaddedConv2D", "FilterMajorConv2D", "InstanceNormalization",
    "PatchDiscriminator", "ResidualBlock", "SCFTAttention", "SCFTEncoder", "SCFTGenerator", "SpectralNormConv2D", "UpsampleConcatConv2D",
    "VGGPreprocessing", "build_discriminator", "build_generator", "build_vgg_features", "unet_decode",
]
