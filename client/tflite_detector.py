"""Runs a LiteRT (TFLite) export in this process with the LiteRT interpreter (no TensorFlow).

`TFLiteDetector(path).detect(image bytes)` answers as SSDClient.detect: the image is decoded
and preprocessed here (the numpy twins of the graph's), the model runs in ai-edge-litert's
interpreter, and the raw variant (model.tflite) is post-processed with the manifest's
settings; the detect variant (detect.tflite) has TFLite_Detection_PostProcess in the model.
Input size, normalisation, class names and post-processing come from the export manifest
beside the file (or embedded in it).
"""
import os
import time

from client import ssd_client as client_lib
from common import images, manifest, np_post_processing, np_preprocessing, tflite_model


class TFLiteDetector:
    """One .tflite export; `detect` answers as SSDClient's."""

    def __init__(self, path, score_threshold=np_post_processing.DISPLAY_THRESHOLD,
                 num_threads=None, max_pixels=images.MAX_PIXELS):
        """Loads the model and its manifest.

        Raises:
          tflite_model.RuntimeMissing: ai-edge-litert is not installed.
          ValueError: no such model, not an SSD .tflite, or no (or a malformed) manifest.
        """
        self.model_path = path
        self.model = tflite_model.TFLiteModel(path, num_threads=num_threads)
        text = tflite_model.read_manifest(path)
        if text is None:
            raise ValueError('%s has no export manifest (%s beside it or embedded): export it '
                             'with export_model.py --format=tflite'
                             % (path, tflite_model.MANIFEST_FILENAME))
        try:
            self.manifest = manifest.parse(text)
        except manifest.ManifestError as error:
            raise ValueError('%s: %s' % (path, error)) from None
        expected = [1, *self.manifest.input_size, 3]
        if self.model.input_shape != expected:
            raise ValueError('%s takes input %s but its manifest says %s'
                             % (path, self.model.input_shape, expected))
        self.score_threshold = score_threshold
        self.max_pixels = max_pixels
        self.class_names = dict(enumerate(self.manifest.class_names))
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        self.info = {'name': os.path.basename(path),
                     'version': int(folder) if folder.isdigit() else 0,
                     'signature': self.model.variant, 'network': self.manifest.network}

    def close(self):
        self.model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def detect(self, image, score_threshold=None):
        """Detects objects in encoded image bytes (or an RGB array [H, W, 3]).

        Returns:
          client.ssd_client.DetectionResult, boxes in pixels of the upright image.

        Raises:
          common.images.ImageError (= client.ssd_client.InvalidImage).
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        start = time.perf_counter()
        if isinstance(image, (bytes, bytearray, memoryview)):
            rgb = images.decode_image(bytes(image), self.max_pixels)
        else:
            rgb = np_preprocessing.to_rgb_uint8(image)
        decoded = time.perf_counter()
        batch = np_preprocessing.preprocess_image(rgb, self.manifest.input_size,
                                                  self.manifest.normalization)[None]
        preprocessed = time.perf_counter()
        boxes, scores, classes = self.model.detections(batch, self.manifest.post_processing)
        predicted = time.perf_counter()
        height, width = rgb.shape[:2]
        detections = client_lib.pixel_detections(boxes, scores, classes, self.class_names,
                                                 height, width, threshold)
        timing = {'decode': (decoded - start) * 1e3, 'preprocess': (preprocessed - decoded) * 1e3,
                  'predict': (predicted - preprocessed) * 1e3,
                  'total': (time.perf_counter() - start) * 1e3}
        return client_lib.DetectionResult(width, height, detections, dict(self.info), timing)
