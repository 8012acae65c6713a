"""Input preprocessing as Keras layers, so that a saved model carries it.

Importing ``tlbook`` imports this module, which registers its layers with Keras under the package
name ``tlbook``: a model saved with one of them loads in a new process after ``import tlbook``
(``keras.models.load_model("model.keras")``), with no ``custom_objects``.
"""

from __future__ import annotations

import keras

#: Per-channel means (B, G, R) that Keras's ImageNet ResNet50 subtracts ("caffe" preprocessing).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tlbook")
class ResNetPreprocess(keras.layers.Layer):
    """ResNet50's own input preprocessing as a layer.

    Input: RGB images, values 0..255, shape ``(n, h, w, 3)``. Output: the same shape, in BGR
    channel order with the ImageNet mean of each channel subtracted and no scaling, exactly
    ``keras.applications.resnet50.preprocess_input`` ("caffe" mode). Inputs in 0..1 are not an
    error but are wrong: they come out as an almost constant image of minus the mean colour.
    """

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=self.compute_dtype)
        return keras.ops.flip(x, axis=-1) - mean

    def compute_output_shape(self, input_shape):
        return input_shape
