"""Benchmark of tf_convert_data's converter on the synthetic shapes set.

    python -m bench.convert [--num_images 1000] [--workers 1 2] [--repeats 2]

Generates ~500x375-pixel JPEGs (sides 375-500 px) in a temporary folder, then
converts them to TFRecords with 1 and 2 worker processes and prints images/s
(wall time of reading the annotations + converting + writing; best of the repeats).
"""
import argparse
import glob
import logging
import os
import sys
import tempfile
import time

import numpy as np

from bench import machine, record
from common import labels as labels_lib
from datasets import converter, make_shapes_dataset, pascalvoc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num_images', type=int, default=1000, help='images to convert')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='worker counts')
    parser.add_argument('--repeats', type=int, default=2, help='runs per worker count')
    record.add_flag(parser)
    args = parser.parse_args()
    if args.num_images < 1 or args.repeats < 1 or min(args.workers) < 1:
        parser.error('--num_images, --repeats and --workers must be >= 1')
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix='bench_convert_') as tmp:
        voc = os.path.join(tmp, 'voc')
        make_shapes_dataset.make_dataset(voc, args.num_images, 0, seed=0, num_workers=2,
                                         side_range=(375, 500))
        labels = labels_lib.read_labels(os.path.join(voc, labels_lib.LABELS_FILENAME))
        jpegs = glob.glob(os.path.join(voc, 'JPEGImages', '*.jpg'))
        kilobytes = np.mean([os.path.getsize(p) for p in jpegs]) / 1024
        print('machine: %s' % machine.describe())
        print('data: %d synthetic JPEGs, sides 375-500 px, mean %.0f KB' % (len(jpegs), kilobytes))
        for workers in args.workers:
            best = 0.0
            for repeat in range(args.repeats):
                out = os.path.join(tmp, 'out_%d_%d' % (workers, repeat))
                start = time.time()
                result = pascalvoc.read_split(voc, 'trainval', labels_lib.ids_by_name(labels))
                summary = converter.convert(result, labels, out, 'shapes_trainval',
                                            num_workers=workers, seed=0)
                rate = summary['num_images'] / (time.time() - start)
                best = max(best, rate)
            print('convert: %d worker(s): %.0f images/s (best of %d)'
                  % (workers, best, args.repeats))
        record.figure('convert', round(best), 'images/s',
                      'Converter, %d worker%s' % (workers, 's' if workers > 1 else ''))


if __name__ == '__main__':
    sys.exit(record.run(main, 'convert'))
