"""Exports an SSD checkpoint as a TF Serving SavedModel version.

    python export_model.py --checkpoint_path=train_dir --model_name=ssd_300_mobilenet_v2 \\
        --export_dir=exports/ssd --labels_file=data/shapes/labels.txt

writes `exports/ssd/<N>/` (N = next integer unless --version) with saved_model.pb, variables/
and assets/labels.txt; signatures `serving_default` and `detect` (see export/ssd_export.py).
"""
import os
import sys

import tensorflow as tf

from common import cli
from datasets import labels as labels_lib
from export import ssd_export
from nets import checkpoints, nets_factory


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    model = parser.add_argument_group('model')
    model.add_argument('--checkpoint_path', required=True,
                       help='checkpoint prefix or train dir (its latest checkpoint)')
    model.add_argument('--model_name', default='ssd_300_mobilenet_v2',
                       choices=nets_factory.NETWORK_NAMES, help='network (default %(default)s)')
    model.add_argument('--labels_file', default=None,
                       help='labels.txt of the training data (default: <train dir>/labels.txt)')
    output = parser.add_argument_group('output')
    output.add_argument('--export_dir', required=True,
                        help='model base path; the version is a subfolder')
    output.add_argument('--version', type=int, default=None,
                        help='version number (default: next integer)')
    cli.add_post_processing_flags(parser, 'detect signature post-processing')
    return parser


def validate_flags(args):
    """Checks the flags; fills in the default --labels_file.

    Raises:
        ValueError: a message naming the flag.
    """
    try:
        checkpoints.resolve_checkpoint(args.checkpoint_path)
    except ValueError as error:
        raise ValueError('--checkpoint_path %s' % error) from None
    if args.labels_file is None:
        folder = (args.checkpoint_path if os.path.isdir(args.checkpoint_path)
                  else os.path.dirname(args.checkpoint_path))
        args.labels_file = os.path.join(folder, labels_lib.LABELS_FILENAME)
    if not os.path.isfile(args.labels_file):
        raise ValueError('--labels_file %s does not exist' % args.labels_file)
    cli.positive(args, ['version'])
    if args.version is not None and os.path.exists(os.path.join(args.export_dir,
                                                                str(args.version))):
        raise ValueError('--version %d exists already in %s; versions are never overwritten'
                         % (args.version, args.export_dir))
    cli.check_post_processing(args)


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
    try:
        path = ssd_export.export(args.model_name, args.checkpoint_path, args.export_dir,
                                 args.labels_file, args.version, cli.post_processing_kwargs(args))
    except (ValueError, FileExistsError) as error:
        print('export_model.py: error: %s' % error, file=sys.stderr)
        return 2
    print('Exported %s to %s' % (args.model_name, path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
