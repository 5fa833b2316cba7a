"""A slim-compatible, arg_scope-able fused batch normalisation.

tf_slim.batch_norm does not import on TF 2.21 (it needs tf_keras.legacy_tf_layers), so
the networks use this one. Variables are named as slim's: `beta`, `gamma` (when
scale=True), `moving_mean`, `moving_variance` under the scope `BatchNorm`.

In inference mode the normalisation is folded into the convolution that produces its
input (see `fold_into_conv`): TensorFlow then fuses convolution, bias and activation into
one op, in float32 and in bfloat16 (where the mixed precision rewrite would otherwise
leave a separate FusedBatchNorm and activation after most convolutions).
"""
import tensorflow as tf
import tf_slim as slim


@slim.add_arg_scope
def batch_norm(inputs,
               decay=0.999,
               center=True,
               scale=False,
               epsilon=0.001,
               activation_fn=None,
               is_training=True,
               trainable=True,
               updates_collections=tf.compat.v1.GraphKeys.UPDATE_OPS,
               variables_collections=None,
               outputs_collections=None,
               param_initializers=None,
               reuse=None,
               scope=None,
               fold_into_conv=True):
    """Fused batch normalisation of NHWC inputs.

    In training mode the batch statistics normalise the inputs and the moving averages
    are updated by ops added to `updates_collections` (run them with the train op, for
    example through slim's create_train_op); with updates_collections=None the updates
    run before the output is returned. In inference mode the moving averages are used.

    Args:
      inputs: float32 [B, H, W, C].
      decay: moving average decay.
      center: add a learnt offset `beta`.
      scale: multiply by a learnt `gamma`.
      epsilon: added to the variance.
      activation_fn: optional activation applied to the output.
      is_training: Python bool.
      trainable: whether beta/gamma are trainable.
      updates_collections: collection for the moving-average updates, or None.
      variables_collections: optional extra collections for the variables.
      outputs_collections: collections to add the output to.
      param_initializers: optional dict of initializers for beta, gamma, moving_mean,
        moving_variance.
      reuse: reuse the variables of the scope.
      scope: variable scope (default 'BatchNorm').
      fold_into_conv: in inference mode, when `inputs` is the output of a Conv2D or
        DepthwiseConv2dNative (NHWC, SAME or VALID padding) that nothing else uses, return
        conv(x, w * s) + (beta - moving_mean * s), s = gamma / sqrt(moving_variance +
        epsilon), instead of normalising the convolution's output (same values, one pass
        over the activations fewer; the unused convolution is never run).

    Returns:
      float32 [B, H, W, C].

    Raises:
      ValueError: inputs are not 4-D or have an unknown channel count.
    """
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.ndims != 4 or inputs.shape[-1] is None:
        raise ValueError('batch_norm needs NHWC inputs with known channels, got shape %s'
                         % inputs.shape)
    if not isinstance(is_training, bool):
        raise ValueError('batch_norm: is_training must be a Python bool, got %r' % (is_training,))
    channels = int(inputs.shape[-1])
    initializers = dict(param_initializers or {})
    collections = list(variables_collections or [])
    with tf.compat.v1.variable_scope(scope, 'BatchNorm', [inputs], reuse=reuse) as sc:

        def _variable(name, default_init, trainable_var):
            return tf.compat.v1.get_variable(
                name, [channels], tf.float32, initializer=initializers.get(name, default_init),
                trainable=trainable_var,
                collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES,
                             tf.compat.v1.GraphKeys.MODEL_VARIABLES] + collections)

        ones = tf.compat.v1.ones_initializer()
        zeros = tf.compat.v1.zeros_initializer()
        beta = _variable('beta', zeros, trainable) if center else tf.zeros([channels])
        gamma = _variable('gamma', ones, trainable) if scale else tf.ones([channels])
        moving_mean = _variable('moving_mean', zeros, False)
        moving_variance = _variable('moving_variance', ones, False)
        if is_training:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=epsilon, is_training=True)
            update_mean = tf.compat.v1.assign_sub(moving_mean, (moving_mean - mean) * (1 - decay))
            update_variance = tf.compat.v1.assign_sub(
                moving_variance, (moving_variance - variance) * (1 - decay))
            if updates_collections is None:
                with tf.control_dependencies([update_mean, update_variance]):
                    outputs = tf.identity(outputs)
            else:
                tf.compat.v1.add_to_collections(updates_collections, update_mean)
                tf.compat.v1.add_to_collections(updates_collections, update_variance)
        elif fold_into_conv and _foldable(inputs):
            factor = gamma * tf.math.rsqrt(moving_variance + epsilon)
            outputs = tf.nn.bias_add(_scaled_conv(inputs.op, factor),
                                     beta - moving_mean * factor)
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=moving_mean, variance=moving_variance,
                epsilon=epsilon, is_training=False)
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        return slim.utils.collect_named_outputs(outputs_collections, sc.name, outputs)


def _foldable(inputs):
    """Whether `inputs` comes straight from a convolution batch_norm can fold into."""
    op = inputs.op
    return (op.type in ('Conv2D', 'DepthwiseConv2dNative') and not inputs.consumers()
            and op.get_attr('data_format') == b'NHWC'
            and op.get_attr('padding') in (b'SAME', b'VALID'))


def _scaled_conv(conv, factor):
    """The convolution op `conv` again, its output channel k multiplied by factor[k].

    Args:
      conv: a Conv2D or DepthwiseConv2dNative op (NHWC), weights [kh, kw, in, out] or
        [kh, kw, in, multiplier].
      factor: float32 [out] (out = in * multiplier for a depthwise convolution).

    Returns:
      float32 [B, H', W', out].
    """
    inputs, weights = conv.inputs[0], conv.inputs[1]
    strides = conv.get_attr('strides')
    padding = conv.get_attr('padding').decode()
    dilations = conv.get_attr('dilations')
    if conv.type == 'Conv2D':
        return tf.nn.conv2d(inputs, weights * factor, strides, padding, dilations=dilations)
    factor = tf.reshape(factor, weights.shape[2:])
    return tf.nn.depthwise_conv2d(inputs, weights * factor, strides, padding,
                                  dilations=dilations[1:3])
