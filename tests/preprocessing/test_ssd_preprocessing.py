"""Tests for preprocessing/ssd_preprocessing.py: the full per-sample functions in tf.data."""
import numpy as np
import pytest
import tensorflow as tf

from common import np_preprocessing
from preprocessing import image_ops, ssd_preprocessing
from tests import helpers

OUT_HW = (64, 64)
NUM_SEEDS = 150


def _sample(num_boxes, seed=0):
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0.0, 1.0, (num_boxes, 2, 2))  # two (y, x) corners per box
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)
    labels = np.arange(1, num_boxes + 1, dtype=np.int64)
    return {
        'image': rng.integers(0, 256, (48, 80, 3)).astype(np.uint8),
        'boxes': boxes,
        'labels': labels,
        'difficult': labels * 10,
        'truncated': labels * 100,
        'filename': b'sample.jpg',
    }


def _dataset(samples):
    dataset = None
    for sample in samples:
        single = tf.data.Dataset.from_tensors(sample)
        dataset = single if dataset is None else dataset.concatenate(single)
    return dataset


def _augmented(samples, normalization, num_seeds=NUM_SEEDS):
    """Each sample augmented with seeds (i, 11), i < num_seeds, in a parallel tf.data map."""
    with tf.Graph().as_default():
        seeds = tf.data.Dataset.range(num_seeds)
        dataset = seeds.flat_map(lambda i: _dataset(samples).map(lambda s: (s, i)))
        dataset = dataset.map(
            lambda s, i: ssd_preprocessing.preprocess_for_train(
                s, OUT_HW, normalization, seed=tf.stack([tf.cast(i, tf.int32), 11])),
            num_parallel_calls=2)
        return helpers.run_dataset(dataset)


@pytest.mark.parametrize('normalization', ['vgg_mean', 'minus_one_to_one'])
def test_training_properties_over_many_seeds(normalization):
    results = _augmented([_sample(4), _sample(1, seed=1), _sample(0)], normalization)
    assert len(results) == 3 * NUM_SEEDS
    counts = []
    for out in results:
        assert out['image'].shape == OUT_HW + (3,) and out['image'].dtype == np.float32
        pixels = np_preprocessing.denormalize(out['image'], normalization)
        assert pixels.min() >= -1e-3 and pixels.max() <= 255.0 + 1e-3
        boxes = out['boxes']
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        assert np.all(boxes >= 0.0) and np.all(boxes <= 1.0)
        assert np.all(boxes[:, 0] < boxes[:, 2]) and np.all(boxes[:, 1] < boxes[:, 3])
        assert (out['labels'].shape == out['difficult'].shape == out['truncated'].shape
                == (len(boxes),))
        np.testing.assert_array_equal(out['difficult'], out['labels'] * 10)
        np.testing.assert_array_equal(out['truncated'], out['labels'] * 100)
        assert len(set(out['labels'])) == len(out['labels'])
        assert out['filename'] == b'sample.jpg'
        counts.append(len(boxes))
    # Crops drop boxes sometimes, never all boxes of an image that had some (centre rule).
    four = counts[0::3]
    assert min(four) >= 1 and min(four) < 4 and max(four) == 4
    assert set(counts[2::3]) == {0}


def test_training_is_deterministic_per_seed_and_varies_across_seeds():
    first = _augmented([_sample(3)], 'vgg_mean', num_seeds=5)
    second = _augmented([_sample(3)], 'vgg_mean', num_seeds=5)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a['image'], b['image'])
        np.testing.assert_array_equal(a['boxes'], b['boxes'])
    assert not np.array_equal(first[0]['image'], first[1]['image'])


def test_training_without_seed_draws_random_augmentations():
    with tf.Graph().as_default():
        dataset = _dataset([_sample(2)]).repeat(4).map(
            lambda s: ssd_preprocessing.preprocess_for_train(s, OUT_HW, 'vgg_mean'))
        results = helpers.run_dataset(dataset)
    assert len(results) == 4
    assert len({r['image'].tobytes() for r in results}) == 4


def test_eval_resizes_and_keeps_boxes():
    sample = _sample(2)
    with tf.Graph().as_default():
        dataset = _dataset([sample]).map(
            lambda s: ssd_preprocessing.preprocess_for_eval(s, OUT_HW, 'minus_one_to_one'))
        out, = helpers.run_dataset(dataset)
        with tf.compat.v1.Session() as sess:
            expected = sess.run(image_ops.eval_preprocess_image(sample['image'], OUT_HW,
                                                                'minus_one_to_one'))
    np.testing.assert_array_equal(out['image'], expected)
    np.testing.assert_array_equal(out['boxes'], sample['boxes'])
    np.testing.assert_array_equal(out['labels'], sample['labels'])
