"""Tests for preprocessing/visualize.py."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

import tf_convert_data
from datasets import make_shapes_dataset
from preprocessing import ssd_preprocessing, visualize


def _sample(index):
    image = np.full((40, 60, 3), 30 * index, np.uint8)
    return {'image': image, 'boxes': np.array([[0.1, 0.1, 0.6, 0.5]], np.float32),
            'labels': np.array([index % 2 + 1], np.int64)}


def test_augmented_samples_and_grid_from_an_in_memory_dataset(tmp_path):
    with tf.Graph().as_default():
        dataset = tf.data.Dataset.from_tensors(_sample(1)).concatenate(
            tf.data.Dataset.from_tensors(_sample(2))).repeat(3)
        samples = visualize.augmented_samples(
            dataset, lambda s: ssd_preprocessing.preprocess_for_train(s, (48, 48), 'vgg_mean'),
            num=5)
    assert len(samples) == 5
    assert samples[0]['image'].shape == (48, 48, 3)
    output = tmp_path / 'grid.png'
    visualize.draw_grid(samples, {0: 'background', 1: 'circle', 2: 'square'}, 'vgg_mean',
                        str(output))
    picture = cv2.imread(str(output))
    assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 200
    assert picture.std() > 0
    assert os.listdir(tmp_path) == ['grid.png']


def test_draw_grid_without_samples_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='no samples'):
        visualize.draw_grid([], {}, 'vgg_mean', str(tmp_path / 'grid.png'))


def test_main_draws_a_grid_of_a_converted_shapes_dataset(tmp_path, capsys):
    voc_dir, records = tmp_path / 'voc', tmp_path / 'records'
    make_shapes_dataset.make_dataset(str(voc_dir), num_train=6, num_test=0, seed=0,
                                     side_range=(64, 96))
    assert tf_convert_data.main([
        '--dataset_name=pascalvoc', '--dataset_dir=%s' % voc_dir, '--split_name=trainval',
        '--labels_file=%s' % (voc_dir / 'labels.txt'), '--output_dir=%s' % records,
        '--output_name=shapes_trainval']) == 0
    output = tmp_path / 'grid.png'
    visualize.main(['--dataset_dir', str(records), '--dataset_name', 'shapes',
                    '--split', 'trainval', '--num', '4', '--output', str(output),
                    '--network', 'ssd_300_mobilenet_v2'])
    assert cv2.imread(str(output)) is not None
    assert 'wrote %s (4 samples)' % output in capsys.readouterr().out


@pytest.mark.parametrize('flags,message', [
    (['--num', '0'], '--num'),
    (['--output', 'grid.jpg'], '--output'),
    (['--dataset_dir', '/nonexistent/records'], '--dataset_dir'),
])
def test_main_rejects_bad_flags(tmp_path, capsys, flags, message):
    argv = ['--dataset_dir', str(tmp_path), '--dataset_name', 'shapes',
            '--output', str(tmp_path / 'grid.png')] + flags
    with pytest.raises(SystemExit):
        visualize.main(argv)
    assert message in capsys.readouterr().err
