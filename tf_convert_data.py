"""Converts VOC-layout or COCO annotated images into sharded TFRecords.

    python tf_convert_data.py --dataset_name=pascalvoc --dataset_dir=VOC2007 \
        --split_name=trainval --output_dir=OUT --output_name=voc2007_trainval
    python tf_convert_data.py --dataset_name=coco --annotations_file=instances_val2017.json \
        --images_dir=val2017 --output_dir=OUT --output_name=coco_val

Writes OUT/NAME_00000-of-000NN.tfrecord, OUT/labels.txt and OUT/NAME_summary.json.
"""
import logging
import os
import sys

from common import cli
from common import labels as labels_lib
from datasets import coco, converter, pascalvoc, record_schema, specs

DATASETS = ('pascalvoc', 'coco')


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    source = parser.add_argument_group('input')
    source.add_argument('--dataset_name', required=True, choices=DATASETS,
                        help='input layout: pascalvoc (VOC2007/2012, synthetic shapes) or coco')
    source.add_argument('--dataset_dir', help='pascalvoc: folder with Annotations/, JPEGImages/, '
                        'ImageSets/Main/')
    source.add_argument('--split_name', default='trainval',
                        help='pascalvoc: ImageSets/Main/<split_name>.txt')
    source.add_argument('--annotations_file', help='coco: instances JSON')
    source.add_argument('--images_dir', help='coco: folder of the images')
    source.add_argument('--labels_file', help='class list (id:name lines or one name a line); '
                        'default: the 20 VOC classes / the COCO categories')
    cli.add_bool(source, 'skip_unknown_classes', False,
                 'drop objects whose class is not in the class list instead of failing')
    output = parser.add_argument_group('output')
    output.add_argument('--output_dir', required=True, help='folder of the TFRecords')
    output.add_argument('--output_name', help='shard prefix; default <dataset_name>_<split_name>')
    output.add_argument('--num_shards', type=int, help='number of shards (default: from '
                        '--samples_per_shard)')
    output.add_argument('--samples_per_shard', type=int, default=500, help='images per shard')
    run = parser.add_argument_group('run')
    run.add_argument('--num_workers', type=int, default=1, help='parallel image readers')
    run.add_argument('--seed', type=int, default=0, help='shuffle seed of the example order')
    return parser


def validate_flags(args):
    """Checks the flags; fills in the default --output_name.

    Raises:
        ValueError: a message naming the flag.
    """
    if args.dataset_name == 'pascalvoc':
        if not args.dataset_dir or not os.path.isdir(args.dataset_dir):
            raise ValueError('--dataset_dir: not a folder: %r' % args.dataset_dir)
    else:
        if not args.annotations_file or not os.path.isfile(args.annotations_file):
            raise ValueError('--annotations_file: not a file: %r' % args.annotations_file)
        if not args.images_dir or not os.path.isdir(args.images_dir):
            raise ValueError('--images_dir: not a folder: %r' % args.images_dir)
    if args.labels_file and not os.path.isfile(args.labels_file):
        raise ValueError('--labels_file: not a file: %r' % args.labels_file)
    if args.output_name is None:
        args.output_name = '%s_%s' % (args.dataset_name, args.split_name)
    if not args.output_name or os.sep in args.output_name:
        raise ValueError('--output_name must be a plain file name prefix, got %r'
                         % args.output_name)
    cli.positive(args, ['num_shards', 'samples_per_shard', 'num_workers'])
    cli.non_negative(args, ['seed'])


def parse_args(argv=None):
    """Parsed and validated flags (argv without the program name); exits on bad flags."""
    return cli.parse(build_parser(), argv, validate_flags)


def read_input(args):
    """Runs the reader of --dataset_name; returns (ReadResult, labels dict)."""
    labels = labels_lib.read_labels(args.labels_file) if args.labels_file else None
    if args.dataset_name == 'pascalvoc':
        labels = labels or pascalvoc.voc_labels()
        result = pascalvoc.read_split(args.dataset_dir, args.split_name,
                                      labels_lib.ids_by_name(labels), args.skip_unknown_classes)
        return result, labels
    return coco.read_instances(args.annotations_file, args.images_dir,
                               labels and labels_lib.ids_by_name(labels),
                               args.skip_unknown_classes)


def main(argv=None):
    args = parse_args(argv)
    cli.setup_logging()
    source = args.dataset_dir if args.dataset_name == 'pascalvoc' else args.annotations_file
    try:
        result, labels = read_input(args)
        logging.info('%s: %d images to convert, %d skipped while reading annotations',
                     source, len(result.examples), len(result.skipped))
        summary = converter.convert(
            result, labels, args.output_dir, args.output_name, num_shards=args.num_shards,
            samples_per_shard=args.samples_per_shard, num_workers=args.num_workers,
            seed=args.seed, source='%s %s' % (args.dataset_name, source))
    except (specs.DatasetError, labels_lib.LabelsError) as e:
        logging.error('conversion failed, nothing written: %s', e)
        return 1
    except OSError as e:
        logging.error('conversion failed, no shards written: %s', e)
        return 1
    for item in summary['skipped']:
        logging.warning('skipped %s: %s', item['item'], item['reason'])
    print('wrote %d images (%d objects, %d difficult) in %d shards to %s at %.0f images/s; '
          'skipped %d, converted %d, boxes clipped %d, degenerate boxes dropped %d; summary %s'
          % (summary['num_images'], summary['num_objects'], summary['difficult'],
             len(summary['shards']), args.output_dir, summary['images_per_second'],
             len(summary['skipped']), len(summary['converted']), summary['boxes_clipped'],
             summary['boxes_degenerate_skipped'],
             os.path.join(args.output_dir, record_schema.summary_name(args.output_name))))
    return 0 if summary['num_images'] else 1


if __name__ == '__main__':
    sys.exit(main())
