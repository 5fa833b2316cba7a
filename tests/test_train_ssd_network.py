"""Tests for train_ssd_network.py: flag checks, multi-clone training, resume, summaries."""
import glob
import json
import os
import pathlib
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
    (['--precision=float16'], '--precision'),
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
    (['--precision=mixed_float16'], '--precision=mixed_float16 needs a GPU'),  # none on CI
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


def test_cli_rejects_bad_flag_before_building(records_dir, tmp_path, capsys):
    train_dir = tmp_path / 'train'
    status, err = helpers.run_main(train_ssd_network.main, [
        '--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir, '--optimizer=adagrad'],
        capsys)
    assert status != 0
    assert 'optimizer' in err
    assert not train_dir.exists()


def _summary_tags(train_dir):
    tags = set()
    for path in glob.glob(os.path.join(train_dir, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow
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


def test_two_data_sets_and_the_self_describing_train_dir(records_dir, tmp_path, capsys):
    """--dataset_name lists two data sets; the train dir gets labels.txt and train_info.json,
    and a run with another network in it stops with a message naming the file."""
    train_dir = tmp_path / 'train'
    common = ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
              '--dataset_name=shapes:trainval,shapes:test', '--batch_size=1',
              '--max_number_of_steps=1', '--seed=1']
    result = _run(common + ['--model_name=ssd_300_mobilenet_v2'])
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((train_dir / 'train_info.json').read_text())
    assert info['network'] == 'ssd_300_mobilenet_v2'
    assert (info['image_size'], info['normalization'], info['num_classes']) == (
        [300, 300], 'minus_one_to_one', 6)
    assert [(d['name'], d['split'], d['num_samples']) for d in info['datasets']] == [
        ('shapes', 'trainval', 8), ('shapes', 'test', 4)]
    assert (train_dir / 'labels.txt').read_text() == (
        pathlib.Path(records_dir) / 'labels.txt').read_text()
    status, err = helpers.run_main(
        train_ssd_network.main, common + ['--model_name=ssd_300_vgg', '--max_number_of_steps=2'],
        capsys)
    assert status != 0
    assert 'train_info.json: network is "ssd_300_mobilenet_v2", this run has "ssd_300_vgg"' \
        in err
    assert 'use another --train_dir' in err
    assert tf.train.latest_checkpoint(str(train_dir)).endswith('model.ckpt-1')


def test_dataset_lists_are_checked_before_building(records_dir, tmp_path, capsys):
    status, err = helpers.run_main(train_ssd_network.main, [
        '--dataset_dir=%s,%s' % (records_dir, tmp_path / 'nope'),
        '--train_dir=%s' % (tmp_path / 't'), '--dataset_name=shapes,shapes'], capsys)
    assert status == 2
    assert '--dataset_dir %s is not a directory' % (tmp_path / 'nope') in err


def _tf_config(task_type, index, jobs=None):
    jobs = jobs or {'worker': ['127.0.0.1:1', '127.0.0.1:2'], 'ps': ['127.0.0.1:3']}
    return json.dumps({'cluster': jobs, 'task': {'type': task_type, 'index': index}})


@pytest.mark.parametrize('tf_config, argv, message', [
    ('{"cluster": {"worker": ["a:1"]', [], 'TF_CONFIG is not valid JSON'),
    (_tf_config('worker', 2), [], 'TF_CONFIG task.index 2 is outside the cluster'),
    (_tf_config('worker', 0), ['--task=3'], '--task 3 is outside the cluster'),
    (_tf_config('worker', 0, {'worker': ['a:1']}), ['--sync_replicas'],
     '--sync_replicas needs ps tasks'),
    ('', ['--sync_replicas'], '--sync_replicas needs a cluster'),
    ('', ['--worker_hosts=a:1,b:1', '--job_name=worker'], 'needs ps tasks'),
    (_tf_config('worker', 0), ['--worker_replicas=5'], '--worker_replicas=5 disagrees'),
])
def test_bad_cluster_descriptions_are_refused_before_building(
        monkeypatch, capsys, tmp_path, tf_config, argv, message):
    monkeypatch.setenv('TF_CONFIG', tf_config)
    train_dir = tmp_path / 'train'
    with pytest.raises(SystemExit) as exit_info:
        train_ssd_network.main(['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % train_dir]
                               + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not train_dir.exists()


def test_cluster_flags_make_the_deployment_of_each_task(tmp_path):
    base = ['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % tmp_path, '--sync_replicas',
            '--ps_strategy=size', '--num_clones=2', '--clone_on_cpu']
    jobs = {'chief': ['c:1'], 'worker': ['w:1', 'w:2'], 'ps': ['p:1']}
    args = train_ssd_network.build_parser().parse_args(base)
    worker = train_ssd_network.deployment_config(args, {'TF_CONFIG': _tf_config('worker', 1,
                                                                                 jobs)})
    assert (worker.replica_id, worker.num_replicas, worker.num_ps_tasks) == (2, 3, 1)
    assert (worker.is_chief, worker.sync_replicas, worker.num_clones) == (False, True, 2)
    assert worker.clone_device(1) == '/job:worker/task:1/device:CPU:1'
    chief = train_ssd_network.deployment_config(args, {'TF_CONFIG': _tf_config('chief', 0, jobs)})
    assert chief.is_chief and chief.worker_device() == '/job:chief/task:0'
    assert train_ssd_network.deployment_config(args, {'TF_CONFIG': _tf_config('ps', 0)}) is None
    flags = _validate(base + ['--ps_hosts=p:1', '--worker_hosts=w:1,w:2', '--job_name=worker',
                              '--task=1', '--replicas_to_aggregate=1'])
    from_flags = train_ssd_network.deployment_config(flags, {})
    assert (from_flags.replica_id, from_flags.replicas_to_aggregate) == (1, 1)
    legacy = train_ssd_network.deployment_config(_validate(
        ['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % tmp_path, '--worker_replicas=2',
         '--num_ps_tasks=1', '--task=1', '--master=grpc://m:1']), {})
    assert (legacy.replica_id, legacy.num_replicas, legacy.is_chief) == (1, 2, False)


def test_a_cluster_host_that_never_answers_is_named(monkeypatch, records_dir, tmp_path):
    dead_ps = '127.0.0.1:%d' % helpers.free_port()
    worker = '127.0.0.1:%d' % helpers.free_port()
    monkeypatch.setenv('TF_CONFIG', _tf_config('worker', 0, {'worker': [worker],
                                                             'ps': [dead_ps]}))
    with pytest.raises(SystemExit) as exit_info:
        train_ssd_network.main(['--dataset_dir=%s' % records_dir,
                                '--train_dir=%s' % (tmp_path / 'train'),
                                '--model_name=ssd_300_mobilenet_v2', '--batch_size=1',
                                '--cluster_wait_secs=1'])
    message = str(exit_info.value.code)
    assert 'no answer from ps 0 at %s after 1 s (--cluster_wait_secs)' % dead_ps in message
    assert not glob.glob(str(tmp_path / 'train' / 'model.ckpt*'))


def test_evaluator_task_evaluates_the_chiefs_checkpoints(monkeypatch, tmp_path):
    import eval_ssd_network
    calls = []
    monkeypatch.setattr(eval_ssd_network, 'main', lambda argv: calls.append(argv) or 0)
    monkeypatch.setenv('TF_CONFIG', _tf_config('evaluator', 0))
    train_dir = tmp_path / 'train'
    assert train_ssd_network.main(['--dataset_dir=%s' % tmp_path, '--train_dir=%s' % train_dir,
                                   '--model_name=ssd_300_mobilenet_v2',
                                   '--eval_dataset_name=voc2007', '--moving_average_decay=0.99',
                                   '--num_preprocessing_threads=3']) == 0
    assert calls == [['--checkpoint_path=%s' % train_dir, '--wait_for_checkpoints',
                      '--eval_dir=%s' % (train_dir / 'eval'), '--dataset_dir=%s' % tmp_path,
                      '--dataset_name=voc2007', '--dataset_split_name=test',
                      '--model_name=ssd_300_mobilenet_v2', '--num_preprocessing_threads=3',
                      '--precision=float32', '--moving_average_decay=0.99']]
    assert train_dir.is_dir()
