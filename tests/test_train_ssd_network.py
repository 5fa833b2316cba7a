"""Tests for train_ssd_network.py: flag checks, multi-clone training, resume, summaries."""
import glob
import os
import subprocess
import sys

import pytest
import tensorflow as tf

import train_ssd_network
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def records_dir(tmp_path_factory):
    return helpers.make_shapes_records(str(tmp_path_factory.mktemp('shapes')), 8, 4, seed=3,
                                           min_side=100, max_side=160)


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'train_ssd_network.py')] + args,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=400,
                          check=False)


def _validate(argv):
    args = train_ssd_network.build_parser().parse_args(argv)
    train_ssd_network.validate_flags(args)
    return args


@pytest.mark.parametrize('argv, flag', [
    ([], '--dataset_dir, --train_dir'),
    (['--model_name=ssd_400'], '--model_name'),
    (['--optimizer=adagrad'], '--optimizer'),
    (['--learning_rate_decay_type=step'], '--learning_rate_decay_type'),
    (['--clone_on_cpu=maybe'], '--clone_on_cpu'),
    (['--noclone_on_cpu=true'], '--noclone_on_cpu'),
    (['--batch_size=eight'], '--batch_size'),
    (['--unknown_flag=1'], '--unknown_flag'),
])
def test_parse_errors_name_the_flag(tmp_path, capsys, argv, flag):
    base = [] if not argv else ['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % tmp_path]
    with pytest.raises(SystemExit) as exit_info:
        train_ssd_network.parse_args(base + argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize('argv, flag', [
    (['--batch_size=0'], '--batch_size'),
    (['--match_threshold=1.5'], '--match_threshold'),
    (['--learning_rate_decay_type=exponential'], '--learning_rate_decay_steps'),
    (['--learning_rate_decay_type=polynomial'], '--max_number_of_steps'),
    (['--learning_rate_decay_type=piecewise', '--learning_rate_boundaries=100,50',
      '--learning_rate_values=1,2,3'], '--learning_rate_boundaries'),
    (['--learning_rate_decay_type=piecewise', '--learning_rate_boundaries=100',
      '--learning_rate_values=1'], '--learning_rate_values'),
    (['--learning_rate_boundaries=100'], 'piecewise'),
    (['--checkpoint_model_scope=vgg_16'], '--checkpoint_path'),
    (['--moving_average_decay=1.0'], '--moving_average_decay'),
    (['--worker_replicas=2'], '--worker_replicas > 1 needs --num_ps_tasks'),
    (['--worker_replicas=2', '--num_ps_tasks=1', '--task=2'], '--task must be in'),
    (['--num_clones=0'], '--num_clones'),
    (['--save_summaries_steps=0'], '--save_summaries_steps'),
    (['--dataset_dir=/no/such/dir'], '--dataset_dir /no/such/dir is not a directory'),
])
def test_invalid_flags_name_the_flag(tmp_path, argv, flag):
    base = ['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % tmp_path]
    with pytest.raises(ValueError, match=flag):
        _validate(base + argv)


def test_valid_flags_pass(tmp_path):
    args = _validate(['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % (tmp_path / 't'),
                      '--learning_rate_decay_type=piecewise', '--learning_rate_boundaries=10,20',
                      '--learning_rate_values=0.1,0.01,0.001', '--warmup_steps=5'])
    assert args.learning_rate_boundaries == ['10', '20']
    config = train_ssd_network.deployment_config(args)
    assert (config.num_clones, config.clone_on_cpu, config.num_replicas) == (1, False, 1)


@pytest.mark.parametrize('argv, value', [
    ([], False),
    (['--clone_on_cpu'], True),
    (['--clone_on_cpu=true'], True),
    (['--clone_on_cpu=False'], False),
    (['--clone_on_cpu', '--noclone_on_cpu'], False),
    (['--clone_on_cpu=1'], True),
])
def test_absl_style_booleans(tmp_path, argv, value):
    args = _validate(['--dataset_dir', str(tmp_path), '--train_dir', str(tmp_path)] + argv)
    assert args.clone_on_cpu is value


def test_cli_rejects_bad_flag_before_building(records_dir, tmp_path):
    train_dir = tmp_path / 'train'
    result = _run(['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
                   '--optimizer=adagrad'])
    assert result.returncode != 0
    assert 'optimizer' in result.stderr
    assert not train_dir.exists()


def _summary_tags(train_dir):
    tags = set()
    for path in glob.glob(os.path.join(train_dir, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_two_clones_train_log_resume_and_summaries(records_dir, tmp_path):
    train_dir = str(tmp_path / 'train')
    common = ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
              '--model_name=ssd_300_mobilenet_v2', '--num_clones=2', '--clone_on_cpu',
              '--batch_size=1', '--log_every_n_steps=1', '--save_summaries_secs=1',
              '--learning_rate_decay_type=polynomial', '--warmup_steps=1', '--seed=1',
              '--moving_average_decay=0.9']
    result = _run(common + ['--max_number_of_steps=2'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'step 2/2: loss' in result.stderr
    assert 'images/s, ETA' in result.stderr
    assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-2')
    result = _run(common + ['--max_number_of_steps=3'])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'step 3/3: loss' in result.stderr
    assert 'step 1/' not in result.stderr
    assert tf.train.latest_checkpoint(train_dir).endswith('model.ckpt-3')
    reader = tf.train.load_checkpoint(train_dir)
    names = reader.get_variable_to_shape_map()
    assert not any(name.startswith('clone_') for name in names)
    assert any(name.startswith('ssd_300_mobilenet_v2/') for name in names)
    assert any(name.endswith('/ExponentialMovingAverage') for name in names)
    tags = _summary_tags(train_dir)
    for tag in ('losses/total', 'losses/cls_pos', 'losses/cls_neg', 'losses/loc',
                'learning_rate'):
        assert tag in tags, tags
    assert any(tag.startswith('train_images_with_boxes') for tag in tags), tags
