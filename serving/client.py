"""gRPC client for the SSD model behind TF Serving or `serving.model_server`, without TensorFlow.

`SSDClient.detect(image)` decodes the image (OpenCV, EXIF orientation honoured), preprocesses it
in numpy, calls Predict on `serving_default` and runs the numpy post-processing; with
`signature='detect'` it sends the encoded image and the graph does all of it.

Class names come from the export itself: the `detect` signature has an output `class_names`
(string [batch, C], index = class id), fetched once per model version with one empty string as
input and `output_filter=['class_names']` (nothing is decoded), which works the same against
real TF Serving.
A `labels_path` (labels.txt) overrides it.

The gRPC messages come from serving.protos (TF Serving's wire format, defined without the
tensorflow package), so importing this module never imports TensorFlow.
"""
import dataclasses
import logging
import threading
import time

import cv2
import grpc
import numpy as np

from common import np_post_processing, np_preprocessing
from common.images import EXIF_ORIENTATION, decode_image  # noqa: F401  (EXIF_ORIENTATION: API)
from common.images import MAX_PIXELS as DEFAULT_MAX_PIXELS
from common.images import ImageError as InvalidImage  # typed subclasses in common.images
from common.images import exif_rotated as _exif_rotated
from common.signatures import (
    BOXES,
    CLASS_NAMES,
    DEFAULT_MODEL_NAME,
    DEFAULT_SIGNATURE,
    DETECT_SIGNATURE,
    DETECTION_BOXES,
    DETECTION_CLASSES,
    DETECTION_OUTPUTS,
    DETECTION_SCORES,
    ENCODED_IMAGES,
    IMAGES,
    MAX_MESSAGE_BYTES,
    NUM_DETECTIONS,
    SCORES,
    SIGNATURES,
    ServingError,
)
from serving import protos, tensor_proto

_UNAVAILABLE_CODES = ('UNAVAILABLE', 'DEADLINE_EXCEEDED', 'NOT_FOUND')
# Subchannels of its own per channel (not shared through gRPC's global pool), so that a replaced
# channel really connects anew; a lost connection is tried again every second (the minimum is
# also the connect timeout: shorter ones fail on a busy machine).
_CHANNEL_OPTIONS = [('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
                    ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
                    ('grpc.use_local_subchannel_pool', 1),
                    ('grpc.min_reconnect_backoff_ms', 1000),
                    ('grpc.max_reconnect_backoff_ms', 1000)]


class ServingUnavailable(ServingError):
    """The server is down, too slow (deadline) or has no such model loaded."""


@dataclasses.dataclass
class Detection:
    class_id: int
    class_name: str
    score: float
    box_px: list  # [xmin, ymin, xmax, ymax] in pixels of the (EXIF-rotated) image


@dataclasses.dataclass
class DetectionResult:
    width: int
    height: int
    detections: list
    model: dict
    timing_ms: dict


@dataclasses.dataclass
class _ModelInfo:
    version: int
    input_hw: tuple
    class_names: dict


class _Connection:
    """A gRPC channel to the server and the stubs of the three calls the client makes."""

    def __init__(self, target, options):
        self.channel = grpc.insecure_channel(target, options=options)
        self.predict = protos.unary_stub(self.channel, protos.PREDICTION_SERVICE, 'Predict')
        self.get_model_metadata = protos.unary_stub(self.channel, protos.PREDICTION_SERVICE,
                                                    'GetModelMetadata')
        self.get_model_status = protos.unary_stub(self.channel, protos.MODEL_SERVICE,
                                                  'GetModelStatus')


class SSDClient:
    """One connection to a model server; thread-safe."""

    def __init__(self, address, model_name=DEFAULT_MODEL_NAME, signature=DEFAULT_SIGNATURE,
                 network='ssd_300_mobilenet_v2', timeout=10.0, retries=3, score_threshold=0.5,
                 labels_path=None, max_pixels=DEFAULT_MAX_PIXELS, postprocess_kwargs=None):
        """Args:
          address: 'host:port' of the gRPC server.
          model_name: served model name.
          signature: 'serving_default' (client-side pre/post-processing) or 'detect' (in the graph).
          network: network name, selects the input normalisation.
          timeout: deadline in seconds of each RPC.
          retries: extra attempts on UNAVAILABLE, with exponential backoff from 0.1 s.
          score_threshold: default minimum score of returned detections.
          labels_path: optional labels.txt overriding the class names of the export.
          max_pixels: larger images raise InvalidImage before decoding.
          postprocess_kwargs: optional kwargs for nets.np_post_processing.postprocess.
        """
        if signature not in SIGNATURES:
            raise ValueError('signature must be one of %s, got %r' % (', '.join(SIGNATURES),
                                                                      signature))
        if network not in np_preprocessing.NORMALIZATION:
            raise ValueError('unknown network %r (known: %s)'
                             % (network, ', '.join(np_preprocessing.NORMALIZATION)))
        self.address = address
        self.model_name = model_name
        self.signature = signature
        self.network = network
        self.timeout = timeout
        self.retries = retries
        self.score_threshold = score_threshold
        self.max_pixels = max_pixels
        self._postprocess_kwargs = dict(postprocess_kwargs or {})
        self._labels = None
        if labels_path:
            from common import labels  # pylint: disable=import-outside-toplevel
            self._labels = labels.read_labels(labels_path)
        self._target, self._channel_options = address, _CHANNEL_OPTIONS
        self._connection = _Connection(self._target, self._channel_options)
        self._connection_lock = threading.Lock()
        self._info = None
        self._info_lock = threading.Lock()

    def close(self):
        with self._connection_lock:
            self._connection.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _reconnect(self, failed):
        """Replaces a connection that answered UNAVAILABLE by a new one, which connects at once
        at its next call.

        A channel that failed to connect waits out its reconnect back-off, and without a call in
        progress gRPC Python handles its events only at a 5 s backup poll: a server restarted
        meanwhile would stay unreachable for seconds. Calls still running on the old channel go
        on; gRPC closes it once they are done.
        """
        with self._connection_lock:
            if self._connection is failed:
                self._connection = _Connection(self._target, self._channel_options)

    def _call(self, method, request):
        """Calls an RPC ('predict', 'get_model_metadata' or 'get_model_status') with the
        deadline, retrying UNAVAILABLE; raises ServingError types."""
        for attempt in range(self.retries + 1):
            connection = self._connection
            try:
                return getattr(connection, method)(request, timeout=self.timeout)
            except grpc.RpcError as e:
                code = e.code().name
                if code == 'UNAVAILABLE':
                    self._reconnect(connection)
                if code == 'UNAVAILABLE' and attempt < self.retries:
                    delay = 0.1 * 2 ** attempt
                    # Expected while a server starts or restarts; the last failure is raised.
                    logging.info('%s unavailable (%s), retrying in %.1f s', self.address,
                                 e.details(), delay)
                    time.sleep(delay)
                    continue
                error = ServingUnavailable if code in _UNAVAILABLE_CODES else ServingError
                raise error('%s from %s: %s' % (code, self.address, e.details()), code) from e
        raise AssertionError('unreachable')

    def predict(self, inputs, signature_name=None, version=None, output_filter=()):
        """Raw Predict. inputs: dict alias -> numpy array or list of bytes.

        Returns:
          (dict alias -> numpy array, served version).
        """
        request = protos.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature_name or self.signature
        if version is not None:
            request.model_spec.version.value = version
        for alias, value in inputs.items():
            tensor_proto.make_tensor_proto(value, request.inputs[alias])
        request.output_filter.extend(output_filter)
        response = self._call('predict', request)
        outputs = {alias: tensor_proto.make_ndarray(proto)
                   for alias, proto in response.outputs.items()}
        return outputs, response.model_spec.version.value

    def metadata(self):
        """The served version's signatures.

        Returns:
          {'name', 'version', 'signatures': {key: {'inputs' | 'outputs': {alias: {'dtype',
          'shape'}}}}}.
        """
        request = protos.GetModelMetadataRequest(metadata_field=['signature_def'])
        request.model_spec.name = self.model_name
        response = self._call('get_model_metadata', request)
        signature_map = protos.SignatureDefMap()
        response.metadata['signature_def'].Unpack(signature_map)
        signatures = {}
        for key, signature in signature_map.signature_def.items():
            signatures[key] = {
                part: {alias: {'dtype': tensor_proto.dtype_name(info.dtype),
                               'shape': tensor_proto.shape_of(info.tensor_shape)}
                       for alias, info in getattr(signature, part).items()}
                for part in ('inputs', 'outputs')}
        return {'name': response.model_spec.name, 'version': response.model_spec.version.value,
                'signatures': signatures}

    def status(self):
        """Returns {'name', 'versions': [{'version', 'state'}]} from ModelService.GetModelStatus."""
        request = protos.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = self._call('get_model_status', request)
        return {'name': self.model_name, 'versions': [
            {'version': s.version, 'state': protos.ModelVersionStatus.State.Name(s.state)}
            for s in response.model_version_status]}

    def model_info(self, version=None, refresh=False):
        """Input size and class names of the served model (cached per version)."""
        with self._info_lock:
            if not refresh and self._info is not None and version in (None, self._info.version):
                return self._info
        meta = self.metadata()
        shape = meta['signatures'][DEFAULT_SIGNATURE]['inputs'][IMAGES]['shape']
        class_names = self._labels
        if class_names is None:
            outputs, _ = self.predict({ENCODED_IMAGES: [b'']}, DETECT_SIGNATURE, meta['version'],
                                      [CLASS_NAMES])
            class_names = {i: name.decode('utf-8')
                           for i, name in enumerate(outputs[CLASS_NAMES][0])}
        info = _ModelInfo(meta['version'], (shape[1], shape[2]), class_names)
        with self._info_lock:
            self._info = info
        return info

    def _to_rgb(self, image):
        if isinstance(image, (bytes, bytearray, memoryview)):
            return decode_image(bytes(image), self.max_pixels)
        try:
            rgb = np_preprocessing.to_rgb_uint8(image)
        except ValueError as e:
            raise InvalidImage(str(e)) from e
        if rgb.shape[0] * rgb.shape[1] > self.max_pixels:
            raise InvalidImage('image is %dx%d pixels, the limit is %d'
                               % (rgb.shape[1], rgb.shape[0], self.max_pixels))
        return rgb

    def detect(self, image, score_threshold=None):
        """Detects objects in one image.

        Args:
          image: encoded bytes (JPEG, PNG, ...) or an array [H, W(, C)] (RGB order).
          score_threshold: minimum score (default: the client's score_threshold).
        Returns:
          DetectionResult, boxes in pixels of the decoded image, sorted by descending score.
        Raises:
          InvalidImage, ServingUnavailable, ServingError.
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        start = time.perf_counter()
        rgb = self._to_rgb(image)
        height, width = rgb.shape[:2]
        decoded = time.perf_counter()
        info = self.model_info()
        if self.signature == DETECT_SIGNATURE:
            boxes, scores, classes, version, timing = self._detect_in_graph(image, rgb)
        else:
            try:
                boxes, scores, classes, version, timing = self._detect_client_side(rgb, info)
            except ServingError as e:  # a new version may expect another input size
                fresh = self.model_info(refresh=True)
                if e.code != 'INVALID_ARGUMENT' or fresh.input_hw == info.input_hw:
                    raise
                info = fresh
                boxes, scores, classes, version, timing = self._detect_client_side(rgb, info)
        if version != info.version:
            info = self.model_info(version)
        keep = scores >= threshold
        scale = np.array([height, width, height, width], np.float32)
        pixels = np.clip(boxes[keep], 0.0, 1.0) * scale
        detections = [Detection(int(c), info.class_names.get(int(c), 'class_%d' % c), float(s),
                                [float(b[1]), float(b[0]), float(b[3]), float(b[2])])
                      for b, s, c in zip(pixels, scores[keep], classes[keep])]
        timing = {'decode': (decoded - start) * 1e3, **timing,
                  'total': (time.perf_counter() - start) * 1e3}
        model = {'name': self.model_name, 'version': version, 'signature': self.signature}
        return DetectionResult(width, height, detections, model, timing)

    def _detect_client_side(self, rgb, info):
        t0 = time.perf_counter()
        normalization = np_preprocessing.NORMALIZATION[self.network]
        batch = np_preprocessing.preprocess_image(rgb, info.input_hw, normalization)[None]
        t1 = time.perf_counter()
        outputs, version = self.predict({IMAGES: batch}, DEFAULT_SIGNATURE)
        t2 = time.perf_counter()
        boxes, scores, classes = np_post_processing.postprocess(
            outputs[SCORES][0], outputs[BOXES][0], **self._postprocess_kwargs)
        t3 = time.perf_counter()
        timing = {'preprocess': (t1 - t0) * 1e3, 'predict': (t2 - t1) * 1e3,
                  'postprocess': (t3 - t2) * 1e3}
        return np.asarray(boxes), np.asarray(scores), np.asarray(classes), version, timing

    def _detect_in_graph(self, image, rgb):
        t0 = time.perf_counter()
        if isinstance(image, (bytes, bytearray, memoryview)) and not _exif_rotated(bytes(image)):
            data = bytes(image)
        else:  # arrays, and EXIF-rotated images the graph's decoder would not rotate
            data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
        t1 = time.perf_counter()
        outputs, version = self.predict({ENCODED_IMAGES: [data]}, DETECT_SIGNATURE,
                                        output_filter=DETECTION_OUTPUTS)
        t2 = time.perf_counter()
        count = int(outputs[NUM_DETECTIONS][0])
        timing = {'preprocess': (t1 - t0) * 1e3, 'predict': (t2 - t1) * 1e3, 'postprocess': 0.0}
        return (outputs[DETECTION_BOXES][0, :count], outputs[DETECTION_SCORES][0, :count],
                outputs[DETECTION_CLASSES][0, :count].astype(np.int64), version, timing)
