"""Learning-rate schedules and optimizers (TF-slim train_image_classifier style)."""
import tensorflow as tf

DECAY_TYPES = ('fixed', 'exponential', 'polynomial', 'piecewise', 'cosine')
OPTIMIZERS = ('sgd', 'momentum', 'adam', 'rmsprop')


def learning_rate_schedule(global_step, decay_type='fixed', learning_rate=0.001,
                           decay_steps=None, decay_factor=0.1, end_learning_rate=0.0,
                           boundaries=(), values=(), warmup_steps=0, staircase=True):
    """The learning rate as a function of the global step.

    Args:
        global_step: int64 scalar tensor.
        decay_type: one of DECAY_TYPES.
        learning_rate: initial rate (fixed, exponential, polynomial, cosine).
        decay_steps: steps per decay (exponential) or of the whole decay
            (polynomial, cosine), counted after the warmup.
        decay_factor: multiplier per decay_steps (exponential).
        end_learning_rate: final rate (polynomial, cosine).
        boundaries: steps where the piecewise rate changes (increasing ints).
        values: len(boundaries) + 1 piecewise rates.
        warmup_steps: linear ramp from 0 to the schedule's rate over these first steps.
        staircase: exponential decay in discrete steps.

    Returns:
        float32 scalar tensor.
    """
    if decay_type not in DECAY_TYPES:
        raise ValueError('Unknown learning rate decay type %r' % decay_type)
    step = tf.cast(global_step, tf.int64)
    decayed_step = tf.maximum(step - warmup_steps, 0)
    if decay_type == 'fixed':
        rate = tf.constant(learning_rate, tf.float32)
    elif decay_type == 'exponential':
        rate = tf.compat.v1.train.exponential_decay(learning_rate, decayed_step, decay_steps,
                                                    decay_factor, staircase=staircase)
    elif decay_type == 'polynomial':
        rate = tf.compat.v1.train.polynomial_decay(learning_rate, decayed_step, decay_steps,
                                                   end_learning_rate, power=1.0)
    elif decay_type == 'cosine':
        alpha = end_learning_rate / learning_rate if learning_rate else 0.0
        rate = tf.compat.v1.train.cosine_decay(learning_rate, decayed_step, decay_steps,
                                               alpha=alpha)
    else:
        rate = tf.compat.v1.train.piecewise_constant(step, [int(b) for b in boundaries],
                                                     [float(v) for v in values])
    rate = tf.cast(rate, tf.float32)
    if warmup_steps > 0:
        ramp = tf.cast(step + 1, tf.float32) / float(warmup_steps)
        rate = tf.where(step < warmup_steps, rate * ramp, rate)
    return tf.identity(rate, name='lr')


def make_optimizer(name, learning_rate, momentum=0.9, adam_beta1=0.9, adam_beta2=0.999,
                   rmsprop_decay=0.9, epsilon=1.0):
    """A tf.compat.v1 optimizer called `name` (one of OPTIMIZERS).

    `epsilon` is the Adam / RMSProp epsilon; `momentum` also serves RMSProp.
    """
    v1 = tf.compat.v1.train
    if name == 'sgd':
        return v1.GradientDescentOptimizer(learning_rate)
    if name == 'momentum':
        return v1.MomentumOptimizer(learning_rate, momentum, name='Momentum')
    if name == 'adam':
        return v1.AdamOptimizer(learning_rate, beta1=adam_beta1, beta2=adam_beta2,
                                epsilon=epsilon)
    if name == 'rmsprop':
        return v1.RMSPropOptimizer(learning_rate, decay=rmsprop_decay, momentum=momentum,
                                   epsilon=epsilon)
    raise ValueError('Unknown optimizer %r' % name)
