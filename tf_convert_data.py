"""Converts VOC-layout or COCO annotated images into sharded TFRecords.

    python tf_convert_data.py --dataset_name=pascalvoc --dataset_dir=VOC2007 \
        --split_name=trainval --output_dir=OUT --output_name=voc2007_trainval
    python tf_convert_data.py --dataset_name=pascalvoc --dataset_dir=my_photos \
        --labels_file=labels.txt --make_splits=trainval:0.9,test:0.1 --seed=0 \
        --split_name=trainval --output_dir=OUT --output_name=mydata_trainval
    python tf_convert_data.py --dataset_name=coco --annotations_file=instances_val2017.json \
        --images_dir=val2017 --output_dir=OUT --output_name=coco_val

Writes OUT/NAME_00000-of-000NN.tfrecord, OUT/labels.txt and OUT/NAME_summary.json. The
trainer reads them back as --dataset_dir=OUT --dataset_name=PREFIX --dataset_split_name=SPLIT
for NAME = PREFIX_SPLIT (mydata_trainval: --dataset_name=mydata).

--dataset_name=pascalvoc reads a folder in VOC layout (Annotations/, JPEGImages/) or one
holding the images with their XML files side by side (as LabelImg writes them); a split is
ImageSets/Main/<split>.txt, or `all` for every annotated image, and --make_splits writes the
split files of a folder that has none.
"""
from common import tf_logs

if __name__ == '__main__':
    tf_logs.filter_stderr()  # first: TensorFlow's import prints its banner

import argparse
import logging
import os
import sys

from common import cli, progress
from common import labels as labels_lib
from datasets import coco, converter, pascalvoc, record_schema, specs, splits

DATASETS = ('pascalvoc', 'coco')


def build_parser():
    """The script's flags, in topic groups."""
    parser = cli.make_parser(__doc__)
    source = parser.add_argument_group('input')
    source.add_argument('--dataset_name', required=True, choices=DATASETS,
                        help='input layout: pascalvoc (VOC2007/2012, synthetic shapes) or coco')
    source.add_argument('--dataset_dir', help='pascalvoc: folder with Annotations/, JPEGImages/ '
                        '(and ImageSets/Main/), or with the images and their XML side by side')
    source.add_argument('--split_name', default='trainval',
                        help='pascalvoc: ImageSets/Main/<split_name>.txt, or %s for every '
                        'annotated image' % splits.ALL)
    source.add_argument('--make_splits', type=_split_spec, metavar='NAME:FRACTION,...',
                        help='pascalvoc: first write ImageSets/Main/<NAME>.txt from every '
                        'annotated image, shuffled with --seed (e.g. trainval:0.9,test:0.1); '
                        'existing files with the same ids are kept, others are an error')
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
    run.add_argument('--seed', type=int, default=0,
                     help='shuffle seed of the example order and of --make_splits')
    return parser


def _split_spec(text):
    """argparse type of --make_splits: [(name, fraction)]."""
    try:
        return splits.parse_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def validate_flags(args):
    """Checks the flags; fills in the default --output_name.

    Raises:
        ValueError: a message naming the flag.
    """
    if args.dataset_name == 'pascalvoc':
        if not args.dataset_dir or not os.path.isdir(args.dataset_dir):
            raise ValueError('--dataset_dir: not a folder: %r' % args.dataset_dir)
        names = [name for name, _ in args.make_splits or ()]
        if names and args.split_name not in names:
            raise ValueError('--split_name=%s is not one of the --make_splits splits (%s)'
                             % (args.split_name, ', '.join(names)))
    else:
        if args.make_splits:
            raise ValueError('--make_splits is for --dataset_name=pascalvoc')
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


def records_flags(output_name, split_name):
    """How the trainer finds records named `output_name`: '--dataset_name=X
    --dataset_split_name=Y' when the name is X_Y, else None."""
    suffix = '_' + split_name
    if output_name.endswith(suffix) and len(output_name) > len(suffix):
        return '--dataset_name=%s --dataset_split_name=%s' % (output_name[:-len(suffix)],
                                                               split_name)
    return None


def write_splits(args):
    """--make_splits: writes the split files; logs each with its size and whether it is new."""
    for name, (path, count, state) in pascalvoc.make_splits(
            args.dataset_dir, args.make_splits, args.seed).items():
        logging.info('split %s: %s, %s (%s, seed %d)', name, path,
                     progress.counted(count, 'image'),
                     'written' if state == 'written' else 'already there with the same ids',
                     args.seed)


def read_input(args):
    """Runs the reader of --dataset_name; returns (ReadResult, labels dict)."""
    labels = labels_lib.read_labels(args.labels_file) if args.labels_file else None
    if args.dataset_name == 'pascalvoc':
        if args.make_splits:
            write_splits(args)
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
        logging.info('%s: %s to convert, %d skipped while reading annotations',
                     source, progress.counted(len(result.examples), 'image'),
                     len(result.skipped))
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
    print('wrote %s (%s, %d difficult) in %s to %s at %.0f images/s; '
          'skipped %d, converted %d, boxes clipped %d, degenerate boxes dropped %d; summary %s'
          % (progress.counted(summary['num_images'], 'image'),
             progress.counted(summary['num_objects'], 'object'), summary['difficult'],
             progress.counted(len(summary['shards']), 'shard'), args.output_dir,
             summary['images_per_second'],
             len(summary['skipped']), len(summary['converted']), summary['boxes_clipped'],
             summary['boxes_degenerate_skipped'],
             os.path.join(args.output_dir, record_schema.summary_name(args.output_name))))
    flags = args.dataset_name == 'pascalvoc' and records_flags(args.output_name, args.split_name)
    if flags and summary['num_images']:
        print('train or evaluate on them with --dataset_dir=%s %s' % (args.output_dir, flags))
    return 0 if summary['num_images'] else 1


if __name__ == '__main__':
    sys.exit(main())
