"""Command-line client: detect objects in images through a model server.

    python -m serving.detect_image --server=127.0.0.1:8500 --model_name=ssd [--output_dir=out] IMG...

Prints one line per detection (file, class, score, box xmin,ymin,xmax,ymax in pixels) and, with
--output_dir, writes `<name>_detections.jpg` with the boxes drawn.
"""
import argparse
import os
import sys
import tempfile

import cv2

from common import np_preprocessing
from serving import client as client_lib

_COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def draw_detections(rgb, detections):
    """Returns a copy of rgb uint8 [H, W, 3] with labelled boxes drawn."""
    image = rgb.copy()
    thickness = max(1, round(min(image.shape[:2]) / 200))
    for detection in detections:
        color = _COLORS[detection.class_id % len(_COLORS)]
        xmin, ymin, xmax, ymax = (int(round(v)) for v in detection.box_px)
        cv2.rectangle(image, (xmin, ymin), (xmax, ymax), color, thickness)
        text = '%s %.2f' % (detection.class_name, detection.score)
        cv2.putText(image, text, (xmin + 2, max(ymin - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, color,
                    thickness, cv2.LINE_AA)
    return image


def write_annotated(path, rgb, detections):
    """Writes the annotated image as JPEG atomically (temporary name, then rename)."""
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(draw_detections(rgb, detections), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError('cannot encode %s' % path)
    handle, temp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', suffix='.tmp')
    with os.fdopen(handle, 'wb') as f:
        f.write(data.tobytes())
    os.replace(temp, path)


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', metavar='IMG', help='image files (JPEG, PNG, ...)')
    parser.add_argument('--server', default='127.0.0.1:8500', help='gRPC host:port')
    parser.add_argument('--model_name', default='ssd')
    parser.add_argument('--signature', default='serving_default', choices=['serving_default', 'detect'])
    parser.add_argument('--network', default='ssd_300_mobilenet_v2', choices=sorted(np_preprocessing.NORMALIZATION))
    parser.add_argument('--score_threshold', type=float, default=0.5)
    parser.add_argument('--labels_file', default=None, help='override the class names of the export')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds per request')
    parser.add_argument('--output_dir', default=None, help='write annotated images here')
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_threshold <= 1.0:
        parser.error('--score_threshold must be in [0, 1]')
    if args.timeout <= 0:
        parser.error('--timeout must be > 0')
    if args.labels_file and not os.path.isfile(args.labels_file):
        parser.error('--labels_file %s does not exist' % args.labels_file)
    return args


def main(argv=None):
    args = _parse_args(argv)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    failures = 0
    with client_lib.SSDClient(args.server, args.model_name, args.signature, args.network, args.timeout,
                              score_threshold=args.score_threshold, labels_path=args.labels_file) as client:
        for path in args.images:
            try:
                with open(path, 'rb') as f:
                    data = f.read()
                result = client.detect(data)
            except (OSError, client_lib.InvalidImage) as e:
                print('%s: error: %s' % (path, e), file=sys.stderr)
                failures += 1
                continue
            except client_lib.ServingError as e:
                print('error: %s' % e, file=sys.stderr)
                return 2
            print('%s: %dx%d, %d detections, model %s version %d, %.1f ms' % (
                path, result.width, result.height, len(result.detections), result.model['name'],
                result.model['version'], result.timing_ms['total']))
            for d in result.detections:
                print('  %-12s %.3f  [%.1f, %.1f, %.1f, %.1f]' % (d.class_name, d.score, *d.box_px))
            if args.output_dir:
                stem = os.path.splitext(os.path.basename(path))[0]
                out = os.path.join(args.output_dir, stem + '_detections.jpg')
                write_annotated(out, client_lib.decode_image(data, client.max_pixels), result.detections)
                print('  -> %s' % out)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
