"""A stand-in for slim's ImageNet vgg_16.ckpt: tf_slim's vgg_16 trained on crops of the shapes.

    python -m bench.vgg_classifier --output_dir DIR [--train_secs 600 | --train_steps 600]
        [--crop_size 48]

No pretrained weights can be downloaded here, so the fine-tuning path
(`train_ssd_network.py --checkpoint_path=vgg_16.ckpt --checkpoint_model_scope=vgg_16
--ignore_missing_vars`) is exercised with a checkpoint made the same way as the model
zoo's: tf_slim's `nets.vgg.vgg_16` variables (scope `vgg_16`, slim's names and shapes,
fc6-fc8 included), saved as one V1 checkpoint file `DIR/vgg_16.ckpt`.

The classification task: 6 classes (background and the 5 shapes) on square crops of
shapes images drawn with their own seed stream (not the detection splits), each object
cropped with a random margin, background crops away from the objects. Crops are small
(--crop_size, default 48 px) to make the training affordable on a CPU; the convolutions
do not care about the input size, but slim's fc6 is a 7x7 VALID convolution that needs
224 px, so the crops go through the conv1-conv5 layers of the same variables (reused),
then global average pooling and a linear classifier of their own (not saved). fc6-fc8 keep
their initial values; the SSD does not restore them (its conv6/conv7 start fresh).
Input normalisation: VGG mean subtraction, as the SSD's (slim's vgg_preprocessing).
"""
import argparse
import os
import sys
import time

import cv2
import numpy as np

from bench import record

CLASSES = ('background',)  # + datasets.shapes.CLASS_NAMES
_SEED_STREAM = 7  # shapes images of splits 0 (trainval) and 1 (test) are the detection data


def _object_crop(rng, image, box, size):
    """A square crop around `box` (x0, y0, x1, y1 inclusive px) with a random margin."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) + 1
    side = side * rng.uniform(1.1, 1.6)
    cx = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * side
    cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * side
    return _square(image, cx, cy, side, size, height, width)


def _square(image, cx, cy, side, size, height, width):
    """The square of `side` px centred on (cx, cy), zero padded, resized to size x size."""
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + max(int(round(side)), 2), y0 + max(int(round(side)), 2)
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    crop = image[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _background_crop(rng, image, boxes, size):
    """A random square that overlaps no object by more than 10% of its area, or None."""
    height, width = image.shape[:2]
    for _ in range(20):
        side = rng.uniform(0.1, 0.5) * min(height, width)
        cx, cy = rng.uniform(side / 2, width - side / 2), rng.uniform(side / 2, height - side / 2)
        x0, y0, x1, y1 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
        overlap = max((max(0.0, min(x1, b[2] + 1) - max(x0, b[0]))
                       * max(0.0, min(y1, b[3] + 1) - max(y0, b[1])) for b in boxes), default=0.0)
        if overlap <= 0.1 * side * side:
            return _square(image, cx, cy, side, size, height, width)
    return None


def make_crops(num_images, size, seed):
    """Crops of `num_images` fresh shapes images.

    Returns:
        (uint8 [N, size, size, 3] RGB crops, int64 [N] labels: 0 background, 1.. shapes).
    """
    from datasets import shapes  # pylint: disable=import-outside-toplevel

    crops, labels = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, _SEED_STREAM, index])
        image, objects = shapes.draw_image(rng)
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        for obj in objects:
            if not obj.difficult:
                crops.append(_object_crop(rng, image, obj.box, size))
                labels.append(shapes.CLASS_NAMES.index(obj.name) + 1)
        background = _background_crop(rng, image, [o.box for o in objects], size)
        if background is not None:
            crops.append(background)
            labels.append(0)
    return np.stack(crops), np.asarray(labels, np.int64)


def _conv_tower(images):
    """conv1-conv5 of slim's vgg_16 (its variables, reused) -> [B, 512] average pooled."""
    import tf_slim as slim  # pylint: disable=import-outside-toplevel

    net = images
    for block, (repeat, depth) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
                                            start=1):
        net = slim.repeat(net, repeat, slim.conv2d, depth, [3, 3], scope='conv%d' % block)
        if block < 5:
            net = slim.max_pool2d(net, [2, 2], scope='pool%d' % block)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.reduce_mean(net, axis=[1, 2])


def train_classifier(output_dir, train_secs=None, crop_size=48, num_images=3000, batch_size=32,
                     learning_rate=1e-4, seed=0, log=print, train_steps=None):
    """Trains the crop classifier for `train_steps` steps or else `train_secs` seconds (one of
    the two must be given); writes OUTPUT_DIR/vgg_16.ckpt.

    Returns:
        dict: checkpoint path, steps, crops seen, train and held-out accuracy, seconds.
    """
    if (train_steps is None) == (train_secs is None):
        raise ValueError('give exactly one of train_secs and train_steps')
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tf_slim as slim  # pylint: disable=import-outside-toplevel
    from tf_slim.nets import vgg  # pylint: disable=import-outside-toplevel

    from common import np_preprocessing  # pylint: disable=import-outside-toplevel

    crops, labels = make_crops(num_images, crop_size, seed)
    held_out = max(len(labels) // 10, 1)
    pixels = np_preprocessing.normalize(crops.astype(np.float32), np_preprocessing.VGG_MEAN)
    train_x, train_y = pixels[held_out:], labels[held_out:]
    test_x, test_y = pixels[:held_out], labels[:held_out]
    num_classes = int(labels.max()) + 1
    log('crops: %d train, %d held out, %d px, classes %s'
        % (len(train_y), held_out, crop_size, np.bincount(labels).tolist()))
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(seed)
        images = tf.compat.v1.placeholder(tf.float32, [None, crop_size, crop_size, 3])
        targets = tf.compat.v1.placeholder(tf.int64, [None])
        with slim.arg_scope(vgg.vgg_arg_scope(weight_decay=0.0005)):
            # slim's own vgg_16 creates every variable of the zoo checkpoint (224 px graph).
            vgg.vgg_16(tf.zeros([1, 224, 224, 3]), num_classes=num_classes, is_training=False)
            saved = tf.compat.v1.global_variables()
            with tf.compat.v1.variable_scope('vgg_16', reuse=True):
                features = _conv_tower(images)
        logits = slim.fully_connected(features, num_classes, activation_fn=None,
                                      scope='crop_classifier')
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(targets, logits)
        conv_vars = [v for v in saved if '/conv' in v.op.name]
        train_vars = conv_vars + slim.get_variables('crop_classifier')
        regularization = tf.add_n([tf.nn.l2_loss(v) for v in conv_vars if 'weights' in v.op.name])
        step = tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(
            loss + 0.0005 * regularization, var_list=train_vars)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), targets), tf.float32))
        saver = tf.compat.v1.train.Saver(saved, write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            start, steps, order = time.time(), 0, np.zeros(0, np.int64)
            while (steps < train_steps if train_steps is not None
                   else time.time() - start < train_secs):
                if len(order) < batch_size:
                    order = rng.permutation(len(train_y))
                batch, order = order[:batch_size], order[batch_size:]
                flip = rng.random(len(batch)) < 0.5
                x = np.where(flip[:, None, None, None], train_x[batch][:, :, ::-1], train_x[batch])
                value, acc, _ = session.run([loss, accuracy, step],
                                            {images: x, targets: train_y[batch]})
                steps += 1
                if steps % 20 == 0:
                    log('step %d: loss %.3f, batch accuracy %.2f, %.1f crops/s'
                        % (steps, value, acc, steps * batch_size / (time.time() - start)))
            seconds = time.time() - start
            held = np.mean([session.run(accuracy, {images: test_x[i:i + 256],
                                                   targets: test_y[i:i + 256]})
                            for i in range(0, held_out, 256)])
            os.makedirs(output_dir, exist_ok=True)
            path = saver.save(session, os.path.join(output_dir, 'vgg_16.ckpt'),
                              write_meta_graph=False, write_state=False)
    log('vgg_16 classifier: %d steps (%d crops) in %.0f s, held-out accuracy %.3f; saved %s'
        % (steps, steps * batch_size, seconds, held, path))
    return {'checkpoint': path, 'steps': steps, 'crops_seen': steps * batch_size,
            'held_out_accuracy': float(held), 'seconds': seconds, 'crop_size': crop_size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output_dir', required=True, help='folder of vgg_16.ckpt')
    parser.add_argument('--train_secs', type=float, default=None,
                        help='training time (default 600 s unless --train_steps)')
    parser.add_argument('--train_steps', type=int, default=None,
                        help='training steps of batch 32 instead of a time')
    parser.add_argument('--crop_size', type=int, default=48, help='crop side in pixels')
    parser.add_argument('--num_images', type=int, default=3000, help='shapes images to crop')
    parser.add_argument('--learning_rate', type=float, default=1e-4, help='Adam learning rate')
    parser.add_argument('--seed', type=int, default=0, help='data and initialisation seed')
    record.add_flag(parser)
    args = parser.parse_args()
    if args.train_secs is not None and args.train_steps is not None:
        parser.error('give --train_secs or --train_steps, not both')
    if args.train_secs is None and args.train_steps is None:
        args.train_secs = 600
    for name in ('train_secs', 'train_steps', 'crop_size', 'num_images', 'learning_rate'):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error('--%s must be > 0' % name)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.compat.v1.disable_eager_execution()
    train_classifier(args.output_dir, args.train_secs, args.crop_size, args.num_images,
                     learning_rate=args.learning_rate, seed=args.seed,
                     train_steps=args.train_steps)


if __name__ == '__main__':
    sys.exit(record.run(main, 'vgg_classifier'))
