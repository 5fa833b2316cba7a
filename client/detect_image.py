"""Command line: detect objects in images through a model server (no TensorFlow).

    python -m client.detect_image --server=127.0.0.1:8500 [--output_dir=out] IMG...

IMG is an image file or a folder (its JPEG, PNG, GIF, BMP and WebP files). Prints one line per
detection (file, class, score, box xmin,ymin,xmax,ymax in pixels) and, with --output_dir, writes
`<name>_detections.jpg` with the boxes drawn. The input size, normalisation and class names come
from the export's manifest. `python -m serving.detect_image` takes the same flags plus
--saved_model, which runs an export in-process with TensorFlow instead of calling a server.

    python -m client.detect_image --tflite=exports/ssd_tflite/1/detect.tflite IMG...

runs a LiteRT (TFLite) export (export_model.py --format=tflite) in this process with the LiteRT
interpreter (the optional package ai-edge-litert: pip install -r requirements-tflite.txt).
"""
import argparse
import os
import sys

import cv2

from client import ssd_client as client_lib
from client import tflite_detector
from common import drawing, images, normalization, np_post_processing, signatures, tflite_model
from common.files import atomic_write

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.mpo', '.png', '.gif', '.bmp', '.webp')


def draw_detections(rgb, detections):
    """Returns a copy of rgb uint8 [H, W, 3] with labelled boxes drawn (common.drawing)."""
    return drawing.draw_boxes(rgb, [d.box_px for d in detections], [d.class_id for d in detections],
                              ['%s %.2f' % (d.class_name, d.score) for d in detections],
                              scores=[d.score for d in detections])


def write_annotated(path, rgb, detections):
    """Writes the annotated image as JPEG, atomically."""
    ok, data = cv2.imencode('.jpg', cv2.cvtColor(draw_detections(rgb, detections),
                                                 cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError('cannot encode %s' % path)
    atomic_write(path, data.tobytes())


def image_paths(arguments):
    """Files named on the command line, folders replaced by their image files (sorted)."""
    paths = []
    for argument in arguments:
        if os.path.isdir(argument):
            paths.extend(sorted(os.path.join(argument, name) for name in os.listdir(argument)
                                if name.lower().endswith(IMAGE_EXTENSIONS)))
        else:
            paths.append(argument)
    return paths


def _parse_args(argv, saved_model_detector=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', metavar='IMG', help='image files or folders')
    source = parser.add_argument_group('model (a server, --tflite or --saved_model)')
    source.add_argument('--server', default='127.0.0.1:8500', help='gRPC host:port')
    source.add_argument('--model_name', default=signatures.DEFAULT_MODEL_NAME)
    source.add_argument('--signature', default=signatures.DEFAULT_SIGNATURE,
                        choices=signatures.SIGNATURES)
    source.add_argument('--normalization', default=None, choices=sorted(normalization.KINDS),
                        help='input normalization of an export without a manifest (checked '
                        'against the manifest otherwise)')
    source.add_argument('--timeout', type=float, default=10.0, help='seconds per request')
    source.add_argument('--tflite', default=None, metavar='MODEL.tflite',
                        help='run this LiteRT model (export_model.py --format=tflite) '
                        'in-process instead of calling a server')
    source.add_argument('--num_threads', type=int, default=None,
                        help='LiteRT interpreter threads (with --tflite; default: its own)')
    if saved_model_detector is not None:
        source.add_argument('--saved_model', default=None,
                            help='run this export in-process instead of calling a server')
    output = parser.add_argument_group('output')
    output.add_argument('--score_threshold', type=float,
                        default=np_post_processing.DISPLAY_THRESHOLD)
    output.add_argument('--labels_file', default=None,
                        help='override the class names of the export (with --server)')
    output.add_argument('--output_dir', default=None, help='write annotated images here')
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_threshold <= 1.0:
        parser.error('--score_threshold must be in [0, 1]')
    if args.timeout <= 0:
        parser.error('--timeout must be > 0')
    if args.labels_file and not os.path.isfile(args.labels_file):
        parser.error('--labels_file %s does not exist' % args.labels_file)
    if args.tflite and getattr(args, 'saved_model', None):
        parser.error('--tflite and --saved_model exclude each other')
    if args.tflite and not os.path.isfile(args.tflite):
        parser.error('--tflite %s does not exist' % args.tflite)
    if args.num_threads is not None and args.num_threads < 1:
        parser.error('--num_threads must be >= 1')
    if getattr(args, 'saved_model', None):
        try:
            signatures.resolve_export(args.saved_model)
        except ValueError as e:
            parser.error('--saved_model: %s' % e)
    return args


def _detector(args, saved_model_detector):
    if args.tflite:
        return tflite_detector.TFLiteDetector(args.tflite, args.score_threshold,
                                              num_threads=args.num_threads)
    if getattr(args, 'saved_model', None):
        return saved_model_detector(args.saved_model, args.score_threshold)
    return client_lib.SSDClient(args.server, args.model_name, args.signature,
                                timeout=args.timeout, score_threshold=args.score_threshold,
                                labels_path=args.labels_file, normalization=args.normalization)


def main(argv=None, saved_model_detector=None):
    """Runs the command line.

    Args:
      argv: arguments without the program name (None: sys.argv[1:]).
      saved_model_detector: fn(export path, score_threshold) -> a detector whose `detect`
        answers as SSDClient's; with it the flag --saved_model exists.

    Returns:
      exit status: 0, 1 when an image failed, 2 when the model could not be asked.
    """
    args = _parse_args(argv, saved_model_detector)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    failures = 0
    try:
        detector = _detector(args, saved_model_detector)
    except (tflite_model.RuntimeMissing, ValueError) as e:
        if not args.tflite:
            raise
        print('error: %s' % e, file=sys.stderr)
        return 2
    with detector:
        for path in image_paths(args.images):
            try:
                with open(path, 'rb') as f:
                    data = f.read()
                result = detector.detect(data)
            except (OSError, images.ImageError) as e:
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
                write_annotated(out, images.decode_image(data, detector.max_pixels),
                                result.detections)
                print('  -> %s' % out)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
