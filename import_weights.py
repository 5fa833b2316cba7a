"""Imports a published SSD detector as a train dir (checkpoint, labels.txt, train_info.json).

    python import_weights.py --source=torchvision --input=ssd300_vgg16_coco-b556d3b4.pth \\
        --train_dir=train/torchvision_coco
    python import_weights.py --source=caffe \\
        --input=VGG_VOC0712_SSD_300x300_iter_120000.caffemodel [--prototxt=deploy.prototxt] \\
        --train_dir=train/caffe_voc
    python import_weights.py --source=ssd_tensorflow --input=ssd_300_vgg.ckpt \\
        --train_dir=train/ssdtf

The network (SSD300 or SSD512, the class count, the source's anchors, box coding order and input
normalisation) is recognised from the file; --model_name only checks it. Class names are the
source's own list (VOC's 20, COCO's 80, or COCO's 91 category ids for torchvision) unless
--labels_file gives them. eval_ssd_network.py, export_model.py and train_ssd_network.py
(fine-tuning) then take --checkpoint_path=TRAIN_DIR with no further flags. Reading a torchvision
.pth needs PyTorch: pip install ".[torch]".
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import sys

from common import cli
from importers import errors, import_lib
from nets import nets_factory


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    source = parser.add_argument_group('source')
    source.add_argument('--source', required=True, choices=import_lib.SOURCES,
                        help='where the weights come from')
    source.add_argument('--input', required=True,
                        help='the weights: a .pth state dict, a .caffemodel, or a TF1 checkpoint '
                        '(prefix or folder)')
    source.add_argument('--prototxt', default=None,
                        help='Caffe only: the model\'s deploy.prototxt, checked against the '
                        '.caffemodel (anchors from its PriorBox layers)')
    source.add_argument('--labels_file', default=None,
                        help='class names (id:name lines, 0:background) instead of the source\'s '
                        'own list')
    source.add_argument('--model_name', default=None, choices=nets_factory.NETWORK_NAMES,
                        help='the network the file must be (a check; default: recognised)')
    output = parser.add_argument_group('output')
    output.add_argument('--train_dir', required=True,
                        help='the new train dir (must not exist, or be empty)')
    return parser


def validate_flags(args):
    """Checks the flags before any file is read.

    Raises:
        ValueError: a message naming the flag or file.
    """
    import_lib.check_inputs(args.source, args.input, args.train_dir, args.prototxt,
                            args.labels_file)


def main(argv=None):
    args = cli.parse(build_parser(), argv, validate_flags)
    cli.setup_logging()
    try:
        result = import_lib.import_weights(args.source, args.input, args.train_dir,
                                           prototxt=args.prototxt, labels_file=args.labels_file,
                                           model_name=args.model_name)
    except errors.WeightsError as error:
        print('import_weights.py: error: %s' % error, file=sys.stderr)
        return 2
    print('Imported %s (%d classes) into %s' % (result.network, result.num_classes,
                                                 args.train_dir))
    print('Fine-tune on other classes with --model_name=%s --checkpoint_path=%s '
          '--checkpoint_exclude_scopes=%s' % (result.network, args.train_dir,
                                              import_lib.class_head_scopes(result.network)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
