"""Command-line flags of the top-level scripts: argparse with absl's spellings, shared checks.

Every script builds a parser with `make_parser`, adds its flags in topic groups and
calls `parse(parser, argv, validate)`: `validate(args)` raises ValueError naming
the flag, which becomes the usual `script.py: error: ...` and exit status 2, before
any graph is built. Flags keep the spellings of the earlier absl scripts:
`--flag=value` or `--flag value`; booleans as `--flag`, `--flag=false` or
`--noflag`; lists as `--flag=a,b`.

Choice lists come from the registries (nets_factory, training.optimization, ...),
which the scripts pass in: this module imports only the standard library and the
numpy post-processing defaults.
"""
import argparse
import logging
import os
import re

from common import np_post_processing, tf_logs

_TRUE = ('true', 't', 'yes', 'y', '1')
_FALSE = ('false', 'f', 'no', 'n', '0')
LOG_FORMAT = '%(asctime)s %(levelname)s %(message)s'


def make_parser(doc):
    """An ArgumentParser showing `doc` (the script's docstring) as its description.

    Abbreviated flag names are refused, as absl refuses them.
    """
    return argparse.ArgumentParser(description=doc, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def parse(parser, argv, validate=None):
    """Parses `argv` (without the program name; None: sys.argv[1:]) and validates it.

    Args:
        parser: from make_parser.
        argv: list of str or None.
        validate: fn(args) raising ValueError with a message naming the flag.

    Returns:
        argparse.Namespace. Exits with status 2 and the message on bad flags.
    """
    args = parser.parse_args(argv)
    if validate is not None:
        try:
            validate(args)
        except ValueError as error:
            parser.error(str(error))
    return args


def setup_logging():
    """INFO lines with a time stamp on stderr (the scripts' progress logs).

    TensorFlow gives its logger a handler of its own when it is imported before the root
    logger has one; that handler is removed so each TensorFlow line is printed once, in
    the same format. TensorFlow's known-harmless records and warnings are dropped
    (common.tf_logs; SSD_ALL_LOGS=1 keeps them).
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger().setLevel(logging.INFO)
    tf_logger = logging.getLogger('tensorflow')
    for handler in list(tf_logger.handlers):
        tf_logger.removeHandler(handler)
    tf_logs.filter_python_logs()


class _BooleanAction(argparse.Action):
    """absl-style boolean: `--name`, `--name=true|false` (or 1/0, yes/no) and `--noname`."""

    def __init__(self, option_strings, dest, default=False, help=None):
        super().__init__(option_strings, dest, nargs='?', default=default, help=help,
                         metavar='true|false')

    def __call__(self, parser, namespace, values, option_string=None):
        negated = option_string != self.option_strings[0]
        if values is None:
            value = not negated
        elif negated:
            parser.error('%s takes no value, got %r' % (option_string, values))
        elif values.lower() in _TRUE:
            value = True
        elif values.lower() in _FALSE:
            value = False
        else:
            parser.error('%s: expected true or false, got %r' % (option_string, values))
        setattr(namespace, self.dest, value)


def add_bool(group, name, default, help_text):
    """Adds boolean flag `--name` (and `--noname`) to a parser or argument group."""
    group.add_argument('--' + name, '--no' + name, dest=name, action=_BooleanAction,
                       default=default, help='%s (default %s)' % (help_text, default))


def comma_list(text):
    """Type of list flags: 'a, b,,c' -> ['a', 'b', 'c']."""
    return [item.strip() for item in text.split(',') if item.strip()]


def required(args, names):
    """Each flag in `names` is set (not None or empty).

    Raises:
        ValueError: '--name is required'.
    """
    for name in names:
        if not getattr(args, name):
            raise ValueError('--%s is required' % name)


def positive(args, names):
    """Each flag in `names` is None or > 0."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError('--%s must be > 0, got %s' % (name, value))


def non_negative(args, names):
    """Each flag in `names` is None or >= 0."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError('--%s must be >= 0, got %s' % (name, value))


def in_range(args, names, low, high, low_open=False, high_open=False):
    """Each flag in `names` is None or in the interval from `low` to `high`.

    Args:
        low_open, high_open: exclude that end of the interval.
    """
    for name in names:
        value = getattr(args, name)
        if value is None:
            continue
        above = low < value if low_open else low <= value
        below = value < high if high_open else value <= high
        if not (above and below):
            raise ValueError('--%s must be in %s%g, %g%s, got %s' % (
                name, '(' if low_open else '[', low, high, ')' if high_open else ']', value))


def directory(args, name):
    """Flag `name` names an existing directory."""
    if not os.path.isdir(getattr(args, name)):
        raise ValueError('--%s %s is not a directory' % (name, getattr(args, name)))


def call_with_flags(function, args, flag_of):
    """Calls function(**{argument: args.<flag>}); its ValueErrors name the flags instead.

    For library classes that check their own arguments (e.g. model_deploy's
    DeploymentConfig), so a script need not repeat those checks to name its flags.

    Args:
        function: callable taking the keyword arguments of `flag_of`.
        args: parsed flags.
        flag_of: dict argument name -> flag name.

    Raises:
        ValueError: the function's message, each argument name replaced by '--flag'.
    """
    try:
        return function(**{argument: getattr(args, flag) for argument, flag in flag_of.items()})
    except ValueError as error:
        pattern = r'\b(%s)\b' % '|'.join(map(re.escape, flag_of))
        raise ValueError(re.sub(pattern, lambda m: '--' + flag_of[m.group(1)],
                                str(error))) from None


def add_dataset_flags(parser, split_name):
    """The flags naming a converted split (dataset_factory.get_dataset) and its readers."""
    group = parser.add_argument_group('dataset')
    group.add_argument('--dataset_dir', required=True,
                       help='directory of the TFRecords and labels.txt (several data sets: '
                       'one, or one per data set, comma separated)')
    group.add_argument('--dataset_name', default='shapes',
                       help='data set name, the records\' prefix (default %(default)s); '
                       'several read as one: voc2007,voc2012 or voc2007:trainval,voc2012:train')
    group.add_argument('--dataset_split_name', default=split_name,
                       help='split to read (default %(default)s)')
    group.add_argument('--num_preprocessing_threads', type=int, default=2,
                       help='parallel preprocessing calls (default %(default)s)')
    return group


def check_dataset_flags(args):
    """--dataset_dir is a directory (or a comma list of them), --num_preprocessing_threads > 0."""
    for folder in args.dataset_dir.split(','):
        if not os.path.isdir(folder.strip()):
            raise ValueError('--dataset_dir %s is not a directory' % folder.strip())
    positive(args, ['num_preprocessing_threads'])


def add_post_processing_flags(parser, title='post-processing'):
    """Score threshold, NMS and top-k flags; unset (None), they leave the network's defaults."""
    group = parser.add_argument_group(title)
    defaults = np_post_processing.DEFAULTS
    helps = {'select_threshold': 'per-class score threshold',
             'nms_threshold': 'NMS IoU threshold',
             'pre_nms_top_k': 'candidates per class before NMS',
             'keep_top_k': 'detections per image'}
    for name, text in helps.items():
        group.add_argument('--' + name, type=type(defaults[name]), default=None,
                           help="%s (default: the network's, SSD's is %s)" % (text, defaults[name]))
    return group


def check_post_processing(args):
    """Thresholds in [0, 1], top-k counts >= 1."""
    in_range(args, ['select_threshold', 'nms_threshold'], 0.0, 1.0)
    positive(args, ['pre_nms_top_k', 'keep_top_k'])


def post_processing_kwargs(args):
    """The post-processing flags given, as keyword arguments of postprocess() overriding
    the network's defaults (SSDNet.post_processing)."""
    return {name: getattr(args, name) for name in np_post_processing.DEFAULTS
            if getattr(args, name) is not None}
