"""Command line: detect objects in images through a model server, or straight from an export.

    python -m serving.detect_image --server=127.0.0.1:8500 [--output_dir=out] IMG...
    python -m serving.detect_image --saved_model=exports/ssd/1 [--output_dir=out] IMG...

The flags of `python -m client.detect_image`, plus --saved_model (an export's version folder,
or its base folder for the highest version): the export's `detect` signature runs in this
process, without a server; TensorFlow is imported only then.
"""
import os
import sys
import time

from client import detect_image as client_cli
from client import ssd_client as client_lib
from common import devices, images, manifest, np_post_processing, signatures


class SavedModelDetector:
    """Runs an export's `detect` signature in this process; `detect` answers as SSDClient's."""

    def __init__(self, path, score_threshold=np_post_processing.DISPLAY_THRESHOLD,
                 max_pixels=images.MAX_PIXELS):
        """Loads the export (imports TensorFlow).

        Raises:
          ValueError: no SavedModel at `path`, it has no `detect` signature, or its manifest
            is malformed.
        """
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        self.export_dir = signatures.resolve_export(path)
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
        # Only names and manifest are computed (no image is decoded), as SSDClient's
        # output_filter does.
        described = [name for name in (signatures.CLASS_NAMES, signatures.MANIFEST)
                     if name in signature.outputs]
        values = dict(zip(described, self._session.make_callable(
            [signature.outputs[name].name for name in described], feed_list=feed)([b''])))
        network = ''
        if signatures.MANIFEST in values:
            try:
                network = manifest.parse(values[signatures.MANIFEST][0]).network
            except manifest.ManifestError as e:
                self.close()
                raise ValueError('%s: %s' % (self.export_dir, e)) from None
        names = values.get(signatures.CLASS_NAMES, [[]])[0]
        self.class_names = {i: name.decode('utf-8') for i, name in enumerate(names)}
        version = os.path.basename(os.path.normpath(self.export_dir))
        self.model = {'name': os.path.basename(os.path.dirname(os.path.normpath(self.export_dir))),
                      'version': int(version) if version.isdigit() else 0,
                      'signature': signatures.DETECT_SIGNATURE, 'network': network}

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
        data = images.upright_encoded(data, rgb)  # the graph's decoder ignores EXIF orientation
        decoded = time.perf_counter()
        boxes, scores, classes, count = self._detect([data])
        predicted = time.perf_counter()
        height, width = rgb.shape[:2]
        count = int(count[0])
        detections = client_lib.pixel_detections(boxes[0, :count], scores[0, :count],
                                                 classes[0, :count], self.class_names, height,
                                                 width, threshold)
        timing = {'decode': (decoded - start) * 1e3, 'predict': (predicted - decoded) * 1e3,
                  'total': (time.perf_counter() - start) * 1e3}
        return client_lib.DetectionResult(width, height, detections, dict(self.model), timing)


def _saved_model_detector(path, score_threshold):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads
    return SavedModelDetector(path, score_threshold)


def main(argv=None):
    return client_cli.main(argv, saved_model_detector=_saved_model_detector)


if __name__ == '__main__':
    sys.exit(main())
