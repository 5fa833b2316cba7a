"""Exports an SSD checkpoint as a TF Serving SavedModel version.

    python export_model.py --checkpoint_path=train_dir --model_name=ssd_300_mobilenet_v2 \
        --export_dir=exports/ssd --labels_file=data/shapes/labels.txt

writes `exports/ssd/<N>/` (N = next integer unless --version) with saved_model.pb, variables/
and assets/labels.txt; signatures `serving_default` and `detect` (see export/ssd_export.py).
"""
import argparse
import os
import sys

import tensorflow as tf

from datasets import labels as labels_lib
from export import ssd_export
from nets import checkpoints, nets_factory


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group('model')
    model.add_argument('--checkpoint_path', required=True, help='checkpoint prefix or train dir (latest checkpoint)')
    model.add_argument('--model_name', default='ssd_300_mobilenet_v2', help='network name')
    model.add_argument('--labels_file', default=None,
                       help='labels.txt of the training data (default: <train dir>/labels.txt)')
    output = parser.add_argument_group('output')
    output.add_argument('--export_dir', required=True, help='model base path; the version is a subfolder')
    output.add_argument('--version', type=int, default=None, help='version number (default: next integer)')
    post = parser.add_argument_group('detect signature post-processing')
    post.add_argument('--select_threshold', type=float, default=0.01)
    post.add_argument('--nms_threshold', type=float, default=0.45)
    post.add_argument('--pre_nms_top_k', type=int, default=400)
    post.add_argument('--keep_top_k', type=int, default=200)
    args = parser.parse_args(argv)

    if args.model_name not in nets_factory.NETWORK_NAMES:
        parser.error('--model_name %r: choose one of %s' % (args.model_name, ', '.join(nets_factory.NETWORK_NAMES)))
    try:
        checkpoints.resolve_checkpoint(args.checkpoint_path)
    except ValueError as e:
        parser.error('--checkpoint_path %s' % e)
    if args.labels_file is None:
        folder = args.checkpoint_path if os.path.isdir(args.checkpoint_path) else os.path.dirname(args.checkpoint_path)
        args.labels_file = os.path.join(folder, labels_lib.LABELS_FILENAME)
    if not os.path.isfile(args.labels_file):
        parser.error('--labels_file %s does not exist' % args.labels_file)
    if args.version is not None and args.version < 1:
        parser.error('--version must be a positive integer')
    if args.version is not None and os.path.exists(os.path.join(args.export_dir, str(args.version))):
        parser.error('--version %d exists already in %s; versions are never overwritten'
                     % (args.version, args.export_dir))
    for flag in ('select_threshold', 'nms_threshold'):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            parser.error('--%s must be in [0, 1]' % flag)
    for flag in ('pre_nms_top_k', 'keep_top_k'):
        if getattr(args, flag) < 1:
            parser.error('--%s must be >= 1' % flag)
    return args


def main(argv=None):
    args = _parse_args(argv)
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
    postprocess_kwargs = dict(select_threshold=args.select_threshold, nms_threshold=args.nms_threshold,
                              pre_nms_top_k=args.pre_nms_top_k, keep_top_k=args.keep_top_k)
    try:
        path = ssd_export.export(args.model_name, args.checkpoint_path, args.export_dir, args.labels_file,
                                 args.version, postprocess_kwargs)
    except (ValueError, FileExistsError) as e:
        print('export_model.py: error: %s' % e, file=sys.stderr)
        return 2
    print('Exported %s to %s' % (args.model_name, path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
