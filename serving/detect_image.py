"""Command line: detect objects in images through a model server, or straight from an export.

    python -m serving.detect_image --server=127.0.0.1:8500 [--output_dir=out] IMG...
    python -m serving.detect_image --saved_model=exports/ssd/1 [--output_dir=out] IMG...

IMG is an image file or a folder (its JPEG, PNG, GIF, BMP and WebP files). Prints one line per
detection (file, class, score, box xmin,ymin,xmax,ymax in pixels) and, with --output_dir, writes
`<name>_detections.jpg` with the boxes drawn. With --saved_model (an export's version folder, or
its base folder for the highest version) the export's `detect` signature runs in this process,
without a server; TensorFlow is imported only then.
"""
import argparse
import os
import sys
import time

import cv2

from client import ssd_client as client_lib
from common import devices, drawing, images, np_preprocessing, signatures
from common.files import atomic_write

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.mpo', '.png', '.gif', '.bmp', '.webp')


def resolve_export(path):
    """The SavedModel folder of `path`: itself, or its highest integer version folder.

    Raises:
      ValueError: naming the path when it holds no saved_model.pb.
    """
    if os.path.isfile(os.path.join(path, signatures.SAVED_MODEL_FILENAME)):
        return path
    versions, _ = signatures.scan_versions(path)
    if not versions:
        raise ValueError('%s holds no %s (give an export folder such as exports/ssd/1, or its '
                         'base folder exports/ssd)' % (path, signatures.SAVED_MODEL_FILENAME))
    return versions[max(versions)]


class SavedModelDetector:
    """Runs an export's `detect` signature in this process; `detect` answers as SSDClient's."""

    def __init__(self, path, score_threshold=0.5, max_pixels=images.MAX_PIXELS):
        """Loads the export (imports TensorFlow).

        Raises:
          ValueError: no SavedModel at `path`, or it has no `detect` signature.
        """
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        self.export_dir = resolve_export(path)
        self.score_threshold = score_threshold
        self.max_pixels = max_pixels
        self._session = tf.compat.v1.Session(
            graph=tf.Graph(), config=devices.without_absent_gpus(tf.compat.v1.ConfigProto()))
        meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [signatures.SERVE_TAG],
                                                          self.export_dir)
        signature = meta_graph.signature_def.get(signatures.DETECT_SIGNATURE)
        if signature is None:
            self.close()
            raise ValueError('%s has no "%s" signature (export it with export_model.py)'
                             % (self.export_dir, signatures.DETECT_SIGNATURE))
        feed = [signature.inputs[signatures.ENCODED_IMAGES].name]
        self._detect = self._session.make_callable(
            [signature.outputs[name].name for name in signatures.DETECTION_OUTPUTS],
            feed_list=feed)
        # Only the names are computed (no image is decoded), as SSDClient's output_filter does.
        names = self._session.make_callable([signature.outputs[signatures.CLASS_NAMES].name],
                                            feed_list=feed)([b''])[0][0]
        self.class_names = {i: name.decode('utf-8') for i, name in enumerate(names)}
        version = os.path.basename(os.path.normpath(self.export_dir))
        self.model = {'name': os.path.basename(os.path.dirname(os.path.normpath(self.export_dir))),
                      'version': int(version) if version.isdigit() else 0,
                      'signature': signatures.DETECT_SIGNATURE}

    def close(self):
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, data, score_threshold=None):
        """Detects objects in encoded image bytes.

        Returns:
          client.ssd_client.DetectionResult, boxes in pixels of the upright image.

        Raises:
          common.images.ImageError (= client.ssd_client.InvalidImage).
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        start = time.perf_counter()
        header = images.read_header(data, self.max_pixels)
        rgb = images.decode_image(data, header=header)
        if header.orientation != 1:  # the graph's decoder ignores EXIF orientation
            data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        decoded = time.perf_counter()
        boxes, scores, classes, count = self._detect([data])
        predicted = time.perf_counter()
        height, width = rgb.shape[:2]
        detections = [
            client_lib.Detection(int(c), self.class_names.get(int(c), 'class_%d' % c), float(s),
                                 [float(b[1] * width), float(b[0] * height),
                                  float(b[3] * width), float(b[2] * height)])
            for b, s, c in zip(boxes[0, :int(count[0])].clip(0.0, 1.0), scores[0], classes[0])
            if s >= threshold]
        timing = {'decode': (decoded - start) * 1e3, 'predict': (predicted - decoded) * 1e3,
                  'total': (time.perf_counter() - start) * 1e3}
        return client_lib.DetectionResult(width, height, detections, dict(self.model), timing)


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


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('images', nargs='+', metavar='IMG', help='image files or folders')
    source = parser.add_argument_group('model (a server, or --saved_model)')
    source.add_argument('--server', default='127.0.0.1:8500', help='gRPC host:port')
    source.add_argument('--model_name', default=signatures.DEFAULT_MODEL_NAME)
    source.add_argument('--signature', default=signatures.DEFAULT_SIGNATURE,
                        choices=signatures.SIGNATURES)
    source.add_argument('--network', default='ssd_300_mobilenet_v2',
                        choices=sorted(np_preprocessing.NORMALIZATION))
    source.add_argument('--timeout', type=float, default=10.0, help='seconds per request')
    source.add_argument('--saved_model', default=None,
                        help='run this export in-process instead of calling a server')
    output = parser.add_argument_group('output')
    output.add_argument('--score_threshold', type=float, default=0.5)
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
    if args.saved_model:
        try:
            resolve_export(args.saved_model)
        except ValueError as e:
            parser.error('--saved_model: %s' % e)
    return args


def _detector(args):
    if args.saved_model:
        os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads
        return SavedModelDetector(args.saved_model, args.score_threshold)
    return client_lib.SSDClient(args.server, args.model_name, args.signature, args.network,
                                args.timeout, score_threshold=args.score_threshold,
                                labels_path=args.labels_file)


def main(argv=None):
    args = _parse_args(argv)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    failures = 0
    with _detector(args) as detector:
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
