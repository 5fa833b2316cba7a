"""Exports an SSD checkpoint as a TF Serving SavedModel version.

    python export_model.py --checkpoint_path=TRAIN_DIR --export_dir=exports/ssd

writes `exports/ssd/<N>/` (N = next integer unless --version) with saved_model.pb, variables/
and assets/labels.txt; signatures `serving_default` and `detect` (see export/ssd_export.py).

    python export_model.py --checkpoint_path=TRAIN_DIR --export_dir=exports/ssd_tflite \
        --format=tflite --quantize=int8 --calibration_dataset_dir=DATA [--dataset_name=shapes]

writes LiteRT models instead: `<N>/model.tflite` (raw scores and boxes), `<N>/detect.tflite`
(post-processing in the model), labels.txt and ssd_manifest.json (export/tflite_export.py,
docs/tflite.md); --quantize=none|float16|int8, int8 calibrated on training records.
The network and the classes come from the train dir (train_info.json and labels.txt, written
by the trainer); --model_name and --labels_file override them and are checked against it.
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import collections
import os
import sys

import numpy as np
import tensorflow as tf

from common import cli, np_preprocessing, precision, progress
from common import labels as labels_lib
from common import signatures as sig
from datasets import dataset_factory
from datasets import train_dir as train_dir_lib
from export import ssd_export, tflite_export
from nets import checkpoints, nets_factory
from nets import precision as nets_precision


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    model = parser.add_argument_group('model')
    model.add_argument('--checkpoint_path', required=True,
                       help='checkpoint prefix or train dir (its latest checkpoint)')
    model.add_argument('--model_name', default=None, choices=nets_factory.NETWORK_NAMES,
                       help='network (default: the one of the train dir\'s train_info.json, '
                       'else %s)' % nets_factory.DEFAULT_NETWORK)
    model.add_argument('--labels_file', default=None,
                       help='labels.txt of the training data (default: <train dir>/labels.txt)')
    output = parser.add_argument_group('output')
    output.add_argument('--export_dir', required=True,
                        help='model base path; the version is a subfolder')
    output.add_argument('--version', type=int, default=None,
                        help='version number (default: next integer)')
    output.add_argument('--format', default='saved_model', choices=FORMATS,
                        help='a TF Serving SavedModel (default) or LiteRT (TFLite) models')
    precision.add_flag(output)
    lite = parser.add_argument_group('tflite (--format=tflite)')
    lite.add_argument('--quantize', default=tflite_export.NONE,
                      choices=tflite_export.QUANTIZATIONS,
                      help='none: float32; float16: float16 weights; int8: weights and '
                      'activations, calibrated on --calibration_dataset_dir (default %(default)s)')
    lite.add_argument('--tflite_variants', type=cli.comma_list,
                      default=list(tflite_export.VARIANTS),
                      help='comma-separated: raw (model.tflite: scores and boxes of every '
                      'anchor) and/or detect (detect.tflite: TFLite_Detection_PostProcess in '
                      'the model) (default: both)')
    lite.add_argument('--calibration_dataset_dir', default=None,
                      help='records for the int8 calibration (the training data\'s folder)')
    lite.add_argument('--dataset_name', default='shapes',
                      help='data set name of the calibration records (default %(default)s)')
    lite.add_argument('--dataset_split_name', default='trainval',
                      help='split of the calibration records (default %(default)s)')
    lite.add_argument('--num_calibration_images', type=int,
                      default=tflite_export.DEFAULT_CALIBRATION_IMAGES,
                      help='calibration images, the first of the split (default %(default)s)')
    cli.add_post_processing_flags(parser, 'detect signature (and detect.tflite) post-processing')
    return parser


FORMATS = ('saved_model', 'tflite')


def _validate_tflite_flags(args, labels):
    """The --format=tflite flags; reads the calibration records' description (int8)."""
    if args.format != 'tflite':
        changed = [flag for flag, value in (('--quantize', args.quantize != tflite_export.NONE),
                                            ('--calibration_dataset_dir',
                                             args.calibration_dataset_dir))
                   if value]
        if changed:
            raise ValueError('%s apply to --format=tflite only' % ' and '.join(changed))
        return
    if args.precision != precision.FLOAT32:
        raise ValueError('--precision=%s applies to --format=saved_model; a .tflite model '
                         'chooses its precision with --quantize' % args.precision)
    unknown = [v for v in args.tflite_variants if v not in tflite_export.VARIANTS]
    if unknown or not args.tflite_variants:
        raise ValueError('--tflite_variants must list some of %s, got %s'
                         % (', '.join(tflite_export.VARIANTS), ','.join(args.tflite_variants)))
    cli.positive(args, ['num_calibration_images'])
    args.calibration_info = None
    if args.quantize == tflite_export.INT8:
        if not args.calibration_dataset_dir:
            raise ValueError('--quantize=int8 needs calibration images: give '
                             '--calibration_dataset_dir (with --dataset_name and '
                             '--dataset_split_name) naming the training records')
        if not os.path.isdir(args.calibration_dataset_dir):
            raise ValueError('--calibration_dataset_dir %s is not a directory'
                             % args.calibration_dataset_dir)
        try:
            args.calibration_info = dataset_factory.get_dataset(
                args.dataset_name, args.dataset_split_name, args.calibration_dataset_dir)
        except ValueError as error:
            raise ValueError('--calibration_dataset_dir: %s' % error) from None
        try:
            tflite_export.check_calibration(args.quantize, args.calibration_info,
                                            max(labels) + 1)
        except ValueError as error:
            raise ValueError('--calibration_dataset_dir: %s' % error) from None


def validate_flags(args):
    """Checks the flags; fills in --model_name and --labels_file from the train dir.

    Raises:
        ValueError: a message naming the flag.
    """
    try:
        checkpoints.resolve_checkpoint(args.checkpoint_path)
    except ValueError as error:
        raise ValueError('--checkpoint_path %s' % error) from None
    folder = train_dir_lib.folder_of(args.checkpoint_path)
    described = train_dir_lib.read(folder)
    args.model_name = train_dir_lib.network_name(folder, described, args.model_name,
                                                 nets_factory.DEFAULT_NETWORK)
    if args.labels_file is None:
        args.labels_file = os.path.join(folder, labels_lib.LABELS_FILENAME)
    if not os.path.isfile(args.labels_file):
        raise ValueError('--labels_file %s does not exist' % args.labels_file)
    try:
        labels = labels_lib.read_labels(args.labels_file)
    except labels_lib.LabelsError as error:
        raise ValueError('--labels_file %s' % error) from None
    if described is not None:
        train_dir_lib.check_labels(folder, described[1], labels,
                                   '--labels_file %s' % args.labels_file)
    cli.positive(args, ['version'])
    if args.version is not None and os.path.exists(os.path.join(args.export_dir,
                                                                str(args.version))):
        raise ValueError('--version %d exists already in %s; versions are never overwritten'
                         % (args.version, args.export_dir))
    cli.check_post_processing(args)
    _validate_tflite_flags(args, labels)
    nets_precision.check_machine(args.precision)


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def precision_report(export_path, network_name, mixed_precision, num_images=2, seed=0):
    """How `mixed_precision` runs the export's serving_default on random images.

    Returns:
      one line: ops in the low precision, largest changes of scores and boxes from float32.
    """
    params = nets_factory.get_network(network_name).params
    rng = np.random.default_rng(seed)
    images = np.stack([np_preprocessing.preprocess_image(
        rng.integers(0, 256, [params.img_shape[0], params.img_shape[1], 3], dtype=np.uint8),
        params.img_shape, params.normalization) for _ in range(num_images)])
    changes, counts = nets_precision.compare_saved_model(
        export_path, mixed_precision, sig.DEFAULT_SIGNATURE, {sig.IMAGES: images})
    dtype = precision.LOW_DTYPES[mixed_precision]
    low = counts.get(dtype, collections.Counter())
    return ('%s in %s on %s: %s in %s (%s); largest change from '
            'float32: scores %.4f, boxes %.4f' % (
                sig.DEFAULT_SIGNATURE, mixed_precision,
                progress.counted(num_images, 'random image'),
                progress.counted(sum(low.values()), 'op'), dtype,
                ', '.join('%d %s' % (n, op) for op, n in low.most_common(4)),
                changes[sig.SCORES], changes[sig.BOXES]))


def export_tflite(args):
    """--format=tflite: converts in eager mode (the graph is built in its own tf.Graph)."""
    try:
        path = tflite_export.export(
            args.model_name, args.checkpoint_path, args.export_dir, args.labels_file,
            args.quantize, tuple(args.tflite_variants), args.version,
            cli.post_processing_kwargs(args), args.calibration_info,
            args.num_calibration_images)
    except (ValueError, FileExistsError) as error:
        print('export_model.py: error: %s' % error, file=sys.stderr)
        return 2
    sizes = ', '.join('%s %.1f MB' % (name, os.path.getsize(os.path.join(path, name)) / 1e6)
                      for name in sorted(os.listdir(path)) if name.endswith('.tflite'))
    print('Exported %s to %s as LiteRT models (quantization %s): %s'
          % (args.model_name, path, args.quantize, sizes))
    return 0


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    if args.format == 'tflite':
        tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.WARN)
        return export_tflite(args)
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
    try:
        path = ssd_export.export(args.model_name, args.checkpoint_path, args.export_dir,
                                 args.labels_file, args.version,
                                 cli.post_processing_kwargs(args),
                                 precision=args.precision)
    except (ValueError, FileExistsError) as error:
        print('export_model.py: error: %s' % error, file=sys.stderr)
        return 2
    print('Exported %s to %s' % (args.model_name, path))
    if args.precision != precision.FLOAT32:
        print(precision_report(path, args.model_name, args.precision))
        print('The graph is float32; serve it in %s with python -m serving.model_server '
              '--precision=%s, or TF Serving --platform_config_file=%s'
              % (args.precision, args.precision,
                 os.path.join(path, precision.EXPORT_PLATFORM_CONFIG)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
