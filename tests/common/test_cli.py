"""common.cli: absl-style spellings on argparse, and checks whose errors name the flag."""
import types

import pytest

from common import cli, np_post_processing


def _flags(tmp_path, **overrides):
    values = dict(dataset_dir=str(tmp_path), num_preprocessing_threads=2, batch_size=8,
                  weight_decay=0.0, moving_average_decay=None, threshold=0.5)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def _parser():
    parser = cli.make_parser('test')
    cli.add_bool(parser, 'clone_on_cpu', False, 'on CPU')
    cli.add_bool(parser, 'remove_difficult', True, 'drop difficult')
    parser.add_argument('--scopes', type=cli.comma_list, default=())
    parser.add_argument('--batch_size', type=int, default=8)
    cli.add_post_processing_flags(parser)
    return parser


def test_valid_flags_pass(tmp_path):
    f = _flags(tmp_path)
    cli.required(f, ['dataset_dir'])
    cli.check_dataset_flags(f)
    cli.positive(f, ['batch_size'])
    cli.non_negative(f, ['weight_decay'])
    cli.in_range(f, ['moving_average_decay', 'threshold'], 0.0, 1.0, low_open=True)
    cli.in_range(_flags(tmp_path, moving_average_decay=0.999), ['moving_average_decay'], 0.0,
                 1.0, low_open=True, high_open=True)
    # Several data sets: one folder per data set, comma separated.
    cli.check_dataset_flags(_flags(tmp_path, dataset_dir='%s,%s' % (tmp_path, tmp_path)))


@pytest.mark.parametrize('check, overrides, message', [
    (lambda f: cli.required(f, ['dataset_dir']), {'dataset_dir': ''}, '--dataset_dir is required'),
    (cli.check_dataset_flags, {'dataset_dir': '/no/such/dir'},
     '--dataset_dir /no/such/dir is not a directory'),
    (cli.check_dataset_flags, {'dataset_dir': '/tmp,/no/such/dir'},
     '--dataset_dir /no/such/dir is not a directory'),
    (cli.check_dataset_flags, {'num_preprocessing_threads': 0},
     '--num_preprocessing_threads must be > 0'),
    (lambda f: cli.positive(f, ['batch_size']), {'batch_size': 0}, '--batch_size must be > 0'),
    (lambda f: cli.non_negative(f, ['weight_decay']), {'weight_decay': -1e-4},
     '--weight_decay must be >= 0'),
    (lambda f: cli.in_range(f, ['moving_average_decay'], 0.0, 1.0, low_open=True,
                            high_open=True), {'moving_average_decay': 1.0},
     r'--moving_average_decay must be in \(0, 1\), got 1.0'),
    (lambda f: cli.in_range(f, ['threshold'], 0.0, 1.0), {'threshold': -0.5},
     r'--threshold must be in \[0, 1\], got -0.5'),
])
def test_bad_value_names_the_flag(tmp_path, check, overrides, message):
    with pytest.raises(ValueError, match=message):
        check(_flags(tmp_path, **overrides))


@pytest.mark.parametrize('argv, clone_on_cpu, remove_difficult', [
    ([], False, True),
    (['--clone_on_cpu'], True, True),
    (['--clone_on_cpu=true', '--noremove_difficult'], True, False),
    (['--clone_on_cpu=0', '--remove_difficult=False'], False, False),
    (['--clone_on_cpu', 'yes'], True, True),
    (['--clone_on_cpu', '--noclone_on_cpu'], False, True),
])
def test_absl_style_booleans(argv, clone_on_cpu, remove_difficult):
    args = _parser().parse_args(argv)
    assert (args.clone_on_cpu, args.remove_difficult) == (clone_on_cpu, remove_difficult)


@pytest.mark.parametrize('argv, message', [
    (['--clone_on_cpu=maybe'], "--clone_on_cpu: expected true or false, got 'maybe'"),
    (['--noclone_on_cpu=true'], '--noclone_on_cpu takes no value'),
    (['--batch=4'], 'unrecognized arguments: --batch=4'),     # no abbreviations, as absl
])
def test_bad_spellings_exit_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_lists_and_values_with_equals_or_space():
    args = _parser().parse_args(['--scopes=a, b/c,,', '--batch_size', '4'])
    assert args.scopes == ['a', 'b/c'] and args.batch_size == 4
    assert _parser().parse_args([]).scopes == ()


def test_parse_turns_value_errors_into_usage_errors(capsys):
    def validate(args):
        cli.positive(args, ['batch_size'])

    assert cli.parse(_parser(), ['--batch_size=3'], validate).batch_size == 3
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(_parser(), ['--batch_size=0'], validate)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'usage:' in err and 'error: --batch_size must be > 0, got 0' in err


def test_post_processing_flags_leave_the_network_defaults_unless_given():
    args = _parser().parse_args([])
    assert cli.post_processing_kwargs(args) == {}
    given = _parser().parse_args(['--nms_threshold=0.5', '--keep_top_k=10'])
    assert cli.post_processing_kwargs(given) == {'nms_threshold': 0.5, 'keep_top_k': 10}
    assert np_post_processing.DEFAULTS == {'select_threshold': 0.01, 'nms_threshold': 0.45,
                                           'pre_nms_top_k': 400, 'keep_top_k': 200}
    cli.check_post_processing(args)
    with pytest.raises(ValueError, match='--nms_threshold must be in'):
        cli.check_post_processing(_parser().parse_args(['--nms_threshold=1.5']))
    with pytest.raises(ValueError, match='--keep_top_k must be > 0'):
        cli.check_post_processing(_parser().parse_args(['--keep_top_k=0']))


def test_call_with_flags_names_the_flags():
    def config(num_replicas, replica_id):
        if not 0 <= replica_id < num_replicas:
            raise ValueError('replica_id must be in [0, %d), got %d' % (num_replicas, replica_id))
        return num_replicas, replica_id

    flags = {'num_replicas': 'worker_replicas', 'replica_id': 'task'}
    assert cli.call_with_flags(config, types.SimpleNamespace(worker_replicas=2, task=1),
                               flags) == (2, 1)
    with pytest.raises(ValueError, match=r'^--task must be in \[0, 2\), got 3$'):
        cli.call_with_flags(config, types.SimpleNamespace(worker_replicas=2, task=3), flags)
