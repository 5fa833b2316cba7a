"""The SSDNet object, a network's spec: params, anchors, graph construction and decoding."""
import dataclasses
import functools
import types
from typing import Callable, Mapping

import tensorflow as tf
import tf_slim as slim

from nets import anchors as anchors_lib
from nets import box_coding
from nets.batch_norm import batch_norm
from nets.ssd_layers import multibox_head
from nets.ssd_params import SSDParams


@functools.lru_cache(maxsize=None)
def _cached_anchors(params):
    """Anchors of an SSDParams (hashable), computed once per distinct params."""
    return anchors_lib.ssd_anchors(params)


@dataclasses.dataclass(frozen=True)
class SSDNet:
    """An SSD network: a feature extractor plus one multibox head per feature layer.

    A description only (built by nets_factory): no graph is built until `net` is called.

    Attributes:
      name: network name, also the default variable scope.
      params: SSDParams (anchors, input size and normalisation, classes).
      feature_fn: fn(inputs, is_training) -> (features dict, end_points dict).
      arg_scope_fn: fn(weight_decay) -> slim arg scope.
      separable_heads: SSDLite heads (depthwise + 1x1) instead of 3x3 convs.
      post_processing: default keyword arguments of post_processing.postprocess.
      bfloat16_training_float32_ops: op types that training in mixed_bfloat16 keeps in float32
        (common.precision.keep_float32_environment): those slower in bfloat16 than in float32.
    """
    name: str
    params: SSDParams
    feature_fn: Callable
    arg_scope_fn: Callable
    separable_heads: bool = False
    post_processing: Mapping = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}), compare=False)
    bfloat16_training_float32_ops: tuple = ()

    def anchors(self):
        """float32 numpy [num_anchors, 4] ymin, xmin, ymax, xmax in output order (a copy)."""
        return _cached_anchors(self.params).copy()

    def arg_scope(self, weight_decay=0.0):
        """The slim arg scope `net` builds the network in (layer defaults, weight decay)."""
        return self.arg_scope_fn(weight_decay=weight_decay)

    def net(self, inputs, is_training=False, scope=None, reuse=None, weight_decay=0.0):
        """Builds the network in its own arg scope.

        Args:
          inputs: float32 [B, H, W, 3] with (H, W) = params.img_shape, normalised as
            params.normalization says.
          is_training: Python bool (batch norm mode).
          scope: variable scope, default the network name.
          reuse: reuse variables.
          weight_decay: L2 weight decay of the layers' regularisation losses (training).

        Returns:
          logits float32 [B, A, num_classes], locs float32 [B, A, 4] (encoded offsets dy, dx,
          dh, dw, whatever order params.box_order says the heads predict), end_points dict
          (feature maps and block outputs).

        Raises:
          ValueError: the input size does not give params.feat_shapes.
        """
        params = self.params
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        if inputs.shape.ndims != 4 or tuple(inputs.shape[1:3]) != tuple(params.img_shape):
            raise ValueError('%s expects inputs [batch, %d, %d, 3], got %s'
                             % (self.name, params.img_shape[0], params.img_shape[1], inputs.shape))
        with slim.arg_scope(self.arg_scope(weight_decay)), \
                tf.compat.v1.variable_scope(scope or self.name, values=[inputs], reuse=reuse), \
                slim.arg_scope([batch_norm], is_training=is_training):
            features, end_points = self.feature_fn(inputs, is_training=is_training)
            all_logits, all_locs = [], []
            for layer, shape, ratios in zip(params.feat_layers, params.feat_shapes,
                                            params.anchor_ratios):
                feature = features[layer]
                if tuple(feature.shape[1:3]) != tuple(shape):
                    raise ValueError('%s: feature layer %s has shape %s, params say %s'
                                     % (self.name, layer, feature.shape[1:3], shape))
                logits, locs = multibox_head(
                    feature, anchors_lib.num_boxes_per_cell(ratios), params.num_classes,
                    separable=self.separable_heads, scope=layer + '_box')
                all_logits.append(logits)
                all_locs.append(locs)
        end_points.update(('feature/' + k, v) for k, v in features.items())
        locs = tf.concat(all_locs, axis=1)
        if params.box_order == 'xy':
            locs = tf.gather(locs, [1, 0, 3, 2], axis=-1, name='yx_offsets')
        return tf.concat(all_logits, axis=1), locs, end_points

    def decode_outputs(self, logits, locs):
        """Softmax scores and decoded boxes.

        Args:
          logits: float32 [B, A, C]; locs: float32 [B, A, 4].

        Returns:
          scores float32 [B, A, C] (column 0 background), boxes float32 [B, A, 4] yxyx.
        """
        scores = tf.nn.softmax(logits, axis=-1)
        boxes = box_coding.decode_boxes(locs, self.anchors(), self.params.prior_scaling)
        return scores, boxes
