"""gRPC client for the SSD model behind TF Serving or `serving.model_server`, without TensorFlow.

`SSDClient.detect(image)` decodes the image (OpenCV, EXIF orientation honoured), preprocesses it
in numpy, calls Predict on `serving_default` and runs the numpy post-processing; with
`signature='detect'` it sends the encoded image and the graph does all of it.

How to use the model comes from the export itself: the `detect` signature has the outputs
`manifest` (the export manifest, common.manifest: network, input size, normalisation with its
numbers, post-processing defaults) and `class_names` (string [batch, C], index = class id),
fetched once per model version with one empty string as input and
`output_filter=['manifest', 'class_names']` (nothing is decoded), which works the same against
real TF Serving. A `labels_path` (labels.txt) overrides the class names; `normalization`
names the input normalisation of an export without a manifest (and is checked against the
manifest of one that has it).

`address` may list several replicas (`h1:8500,h2:8500`) or name a DNS target
(`dns:///svc:8500`, a headless Kubernetes Service; common.serving_address parses the forms):
calls are balanced round-robin over the healthy replicas (client.replicas: a channel with
keepalive pings to each, ejection of replicas that failed). Each call has one overall deadline
(`timeout`); with several replicas each attempt has a shorter one (`attempt_timeout`), so that
a call whose replica is gone (UNAVAILABLE), hung (its attempt's deadline) or has no loaded
version of the model (NOT_FOUND) is sent again, to another replica, within the call's deadline
(Predict, GetModelMetadata and GetModelStatus are idempotent); other errors are raised at once.
`version` / `version_label` pin TF Serving's `model_spec.version` / `version_label`; every
answer names the version that computed it. `replica_status()` asks every replica at once with
a short deadline.

The gRPC messages come from client.protos (TF Serving's wire format, defined without the
tensorflow package), so importing this module never imports TensorFlow.
"""
import dataclasses
import logging
import threading
import time

import grpc
import numpy as np

from client import protos, replicas, tensor_proto
from common import manifest as manifest_lib
from common import normalization as normalization_lib
from common import np_post_processing, np_preprocessing, serving_address
from common.images import EXIF_ORIENTATION, decode_image, upright_encoded  # noqa: F401  (EXIF_ORIENTATION: API)
from common.images import MAX_PIXELS as DEFAULT_MAX_PIXELS
from common.images import ImageError as InvalidImage  # typed subclasses in common.images
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
    MANIFEST,
    NUM_DETECTIONS,
    SCORES,
    SIGNATURES,
    ServingError,
)

_UNAVAILABLE_CODES = ('UNAVAILABLE', 'DEADLINE_EXCEEDED', 'NOT_FOUND')
# First delay before a retry on a replica this call already tried; doubled per attempt, never
# past the deadline (a replica not tried yet is asked at once).
_RETRY_DELAY_S = 0.05
# Deadline of replica_status: a healthy replica answers GetModelStatus in milliseconds.
STATUS_TIMEOUT_S = 0.3
# Model infos kept (one per version: replicas may serve different versions during a rollout).
_CACHED_VERSIONS = 4


class ServingUnavailable(ServingError):
    """The server is down, too slow (deadline) or has no such model loaded."""


@dataclasses.dataclass
class Detection:
    class_id: int
    class_name: str
    score: float
    box_px: list  # [xmin, ymin, xmax, ymax] in pixels of the (EXIF-rotated) image


def pixel_detections(boxes, scores, classes, class_names, height, width, threshold):
    """Detections with a score >= threshold, boxes in pixels of an image.

    Args:
      boxes: float [N, 4] ymin, xmin, ymax, xmax normalised (clipped to the image here).
      scores: float [N]; classes: int [N].
      class_names: dict class id -> name (missing ids are named 'class_<id>').
      height, width: image size in pixels.
      threshold: minimum score.

    Returns:
      list of Detection, in the order given.
    """
    boxes, scores, classes = np.asarray(boxes), np.asarray(scores), np.asarray(classes)
    keep = scores >= threshold
    scale = np.array([height, width, height, width], np.float32)
    pixels = np.clip(boxes[keep], 0.0, 1.0) * scale
    return [Detection(int(c), class_names.get(int(c), 'class_%d' % c), float(s),
                      [float(b[1]), float(b[0]), float(b[3]), float(b[2])])
            for b, s, c in zip(pixels, scores[keep], classes[keep])]


@dataclasses.dataclass
class DetectionResult:
    width: int
    height: int
    detections: list
    model: dict
    timing_ms: dict


@dataclasses.dataclass
class ModelInfo:
    """How to use one model version, from its export manifest (and the client's overrides).

    Attributes:
      version: the model version.
      network: network name ('' for an export without a manifest).
      input_hw: (height, width) of the `images` input.
      normalization: common.normalization.Normalization of the input (None: unknown, for an
        export without a manifest when the client names none).
      post_processing: keyword arguments of np_post_processing.postprocess.
      class_names: dict class id -> name.
    """
    version: int
    network: str
    input_hw: tuple
    normalization: normalization_lib.Normalization
    post_processing: dict
    class_names: dict


class SSDClient:
    """One channel to a model server or to its replicas; thread-safe."""

    def __init__(self, address, model_name=DEFAULT_MODEL_NAME, signature=DEFAULT_SIGNATURE,
                 timeout=10.0, retries=3, score_threshold=np_post_processing.DISPLAY_THRESHOLD,
                 labels_path=None, max_pixels=DEFAULT_MAX_PIXELS, postprocess_kwargs=None,
                 version=None, version_label=None, normalization=None, attempt_timeout=None):
        """Args:
          address: 'host:port' of the gRPC server, 'h1:port,h2:port' of replicas, or a gRPC
            target such as 'dns:///svc:8500' (common.serving_address).
          model_name: served model name.
          signature: 'serving_default' (client-side pre/post-processing) or 'detect' (in the graph).
          timeout: overall deadline in seconds of each call, its retries included.
          retries: extra attempts on UNAVAILABLE, DEADLINE_EXCEEDED of an attempt or NOT_FOUND
            (on another replica when there are several; again on one already tried after a
            backoff from 0.05 s), within the deadline.
          score_threshold: default minimum score of returned detections.
          labels_path: optional labels.txt overriding the class names of the export.
          max_pixels: larger images raise InvalidImage before decoding.
          postprocess_kwargs: optional kwargs of common.np_post_processing.postprocess,
            over the manifest's post-processing defaults.
          version: pin this model version (TF Serving's model_spec.version); None: the latest.
          version_label: pin this version label, e.g. 'stable' or 'canary'
            (model_spec.version_label); TF Serving resolves it, the local server refuses labels.
          normalization: name of a common.normalization kind: how to normalise the input of an
            export without a manifest; checked against the manifest of one that has it.
          attempt_timeout: deadline in seconds of one attempt when there are several replicas
            (default: a third of `timeout`, so that retries on healthy replicas fit); a lone
            server gets the whole `timeout`.

        Raises:
          ValueError: a bad signature, normalization or address, both version and
            version_label, or an attempt_timeout that is not in (0, timeout].
        """
        if version is not None and version_label:
            raise ValueError('give version or version_label, not both (got %r and %r)'
                             % (version, version_label))
        if signature not in SIGNATURES:
            raise ValueError('signature must be one of %s, got %r' % (', '.join(SIGNATURES),
                                                                      signature))
        attempt_timeout = timeout / 3.0 if attempt_timeout is None else attempt_timeout
        if not 0 < attempt_timeout <= timeout:
            raise ValueError('attempt_timeout must be in (0, timeout=%s], got %r'
                             % (timeout, attempt_timeout))
        self.normalization = (None if normalization is None
                              else normalization_lib.get(normalization))
        self.address = address
        self._address = serving_address.parse(address)
        self.model_name = model_name
        self.version = version
        self.version_label = version_label or None
        self.signature = signature
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.retries = retries
        self.score_threshold = score_threshold
        self.max_pixels = max_pixels
        self._postprocess_kwargs = dict(postprocess_kwargs or {})
        self._labels = None
        if labels_path:
            from common import labels  # pylint: disable=import-outside-toplevel
            self._labels = labels.read_labels(labels_path)
        self._replicas = replicas.ReplicaSet(self._address)
        self._infos = {}  # version -> ModelInfo, the latest one last
        self._info_lock = threading.Lock()

    def close(self):
        self._replicas.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, timeout=None, retries=None):
        """Calls an RPC ('predict', 'get_model_metadata' or 'get_model_status') within one
        overall deadline; UNAVAILABLE, an attempt's DEADLINE_EXCEEDED and NOT_FOUND are sent
        again to another replica (the replica is ejected for a while, except after NOT_FOUND of a
        pinned version, which another replica may have); other codes are raised at once.

        Args:
          timeout, retries: the client's when None.
        Raises:
          ServingUnavailable, ServingError.
        """
        retries = self.retries if retries is None else retries
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pinned = request.model_spec.HasField('version') or bool(request.model_spec.version_label)
        tried = set()
        for attempt in range(retries + 1):
            try:
                replica = self._replicas.pick(tried)
            except OSError as e:
                raise ServingUnavailable(str(e), 'UNAVAILABLE') from e
            remaining = deadline - time.monotonic()
            attempt_s = (min(remaining, self.attempt_timeout) if self._replicas.balanced
                         else remaining)
            try:
                response = getattr(replica.connection, method)(request,
                                                               timeout=max(attempt_s, 0.001))
            except grpc.RpcError as e:
                code = e.code().name
                cut_short = code == 'DEADLINE_EXCEEDED' and attempt_s < remaining
                failed = code == 'UNAVAILABLE' or cut_short or (code == 'NOT_FOUND' and not pinned)
                self._replicas.release(replica, '%s: %s' % (code, e.details()) if failed else None,
                                       unreachable=code in ('UNAVAILABLE', 'DEADLINE_EXCEEDED'))
                tried.add(replica.address)
                more = len(tried) < len(self._replicas.replicas())
                retry = code == 'UNAVAILABLE' or cut_short or (code == 'NOT_FOUND' and more)
                delay = 0.0 if more else _RETRY_DELAY_S * 2 ** attempt
                if retry and attempt < retries and deadline - time.monotonic() > delay:
                    # Expected while a replica starts, restarts, hangs or dies; the last raises.
                    logging.info('%s from %s (%s), retrying%s', code, replica.address,
                                 e.details(), ' in %.2f s' % delay if delay else ' elsewhere')
                    time.sleep(delay)
                    continue
                error = ServingUnavailable if code in _UNAVAILABLE_CODES else ServingError
                raise error('%s from %s: %s' % (code, replica.address, e.details()), code) from e
            self._replicas.release(replica)
            return response
        raise AssertionError('unreachable')

    def _model_spec(self, model_spec, version=None):
        """Names the model and the version asked for: `version`, else the client's pin."""
        model_spec.name = self.model_name
        version = self.version if version is None else version
        if version is not None:
            model_spec.version.value = version
        elif self.version_label:
            model_spec.version_label = self.version_label

    def predict(self, inputs, signature_name=None, version=None, output_filter=()):
        """Raw Predict. inputs: dict alias -> numpy array or list of bytes.

        Args:
          version: ask for this version (default: the client's pin, else the latest).

        Returns:
          (dict alias -> numpy array, the version that answered).
        """
        request = protos.PredictRequest()
        self._model_spec(request.model_spec, version)
        request.model_spec.signature_name = signature_name or self.signature
        for alias, value in inputs.items():
            tensor_proto.make_tensor_proto(value, request.inputs[alias])
        request.output_filter.extend(output_filter)
        response = self._call('predict', request)
        outputs = {alias: tensor_proto.make_ndarray(proto)
                   for alias, proto in response.outputs.items()}
        return outputs, response.model_spec.version.value

    def metadata(self, version=None):
        """The signatures of a version (default: the client's pin, else the latest).

        Returns:
          {'name', 'version', 'signatures': {key: {'inputs' | 'outputs': {alias: {'dtype',
          'shape'}}}}}.
        """
        request = protos.GetModelMetadataRequest(metadata_field=['signature_def'])
        self._model_spec(request.model_spec, version)
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

    def status(self, timeout=None, retries=None):
        """Returns {'name', 'versions': [{'version', 'state'}]} from ModelService.GetModelStatus."""
        request = protos.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = self._call('get_model_status', request, timeout, retries)
        return {'name': self.model_name, 'versions': _versions(response)}

    def replica_status(self, timeout=STATUS_TIMEOUT_S):
        """Asks every replica for its model status at once (a DNS name resolved when due),
        without retries.

        Returns:
          list of {'address', 'versions': [{'version', 'state'}]} or {'address', 'error'}, each
          with 'ejected_s' when the client avoids that replica for now (seconds left);
          [{'address': <the DNS name>, 'error'}] when the name does not resolve.
        """
        try:
            replicas = self._replicas.replicas()
        except OSError as e:
            return [{'address': self.address, 'error': str(e)}]
        request = protos.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        calls = [(replica, replica.connection.get_model_status.future(request, timeout=timeout))
                 for replica in replicas]
        answers = []
        for replica, call in calls:
            try:
                answer = {'address': replica.address, 'versions': _versions(call.result())}
            except grpc.RpcError as e:
                answer = {'address': replica.address, 'error': '%s from %s: %s' % (
                    e.code().name, replica.address, e.details())}
            ejected = self._replicas.ejected_seconds(replica)
            if ejected:
                answer['ejected_s'] = round(ejected, 1)
            answers.append(answer)
        return answers

    def model_info(self, version=None, refresh=False):
        """The ModelInfo of a version (default: the latest asked), cached per version.

        Raises:
          ServingUnavailable, ServingError.
        """
        with self._info_lock:
            if not refresh and self._infos:
                info = self._infos.get(version) if version is not None else (
                    list(self._infos.values())[-1])
                if info is not None:
                    return info
        info = self._fetch_info(version)
        with self._info_lock:
            self._infos.pop(info.version, None)
            self._infos[info.version] = info
            while len(self._infos) > _CACHED_VERSIONS:
                self._infos.pop(next(iter(self._infos)))
        return info

    def _fetch_info(self, version):
        """Metadata, manifest and class names of one version. Across replicas during a rollout,
        a replica without that version answers NOT_FOUND: the next ones are asked then."""
        attempts = 1 if version is None or not self._address.balanced else 1 + max(
            len(self._address.replicas), 2)
        for attempt in range(attempts):
            try:
                return self._read_info(self.metadata(version))
            except ServingError as e:
                if e.code != 'NOT_FOUND' or attempt + 1 == attempts:
                    raise
        raise AssertionError('unreachable')

    def _read_info(self, meta):
        """ModelInfo of the version `meta` (metadata()) describes, from its export manifest.

        Without a manifest the normalisation is the client's (None when not given: then only
        the `detect` signature, which normalises in the graph, can be used).

        Raises:
          ServingError: FAILED_PRECONDITION for a malformed manifest or one that disagrees
            with the client's normalization.
        """
        where = '%s version %d at %s' % (self.model_name, meta['version'], self.address)
        shape = meta['signatures'][DEFAULT_SIGNATURE]['inputs'][IMAGES]['shape']
        detect_outputs = meta['signatures'].get(DETECT_SIGNATURE, {}).get('outputs', {})
        wanted = [name for name in (MANIFEST, CLASS_NAMES) if name in detect_outputs]
        outputs = {}
        if wanted:
            outputs, _ = self.predict({ENCODED_IMAGES: [b'']}, DETECT_SIGNATURE,
                                      meta['version'], wanted)
        class_names = self._labels
        if class_names is None and CLASS_NAMES in outputs:
            class_names = {i: name.decode('utf-8')
                           for i, name in enumerate(outputs[CLASS_NAMES][0])}
        if MANIFEST not in outputs:
            if self.normalization is not None:
                logging.warning('%s has no export manifest; normalising its input as %r, as '
                                'told', where, self.normalization.name)
            return ModelInfo(meta['version'], '', (shape[1], shape[2]), self.normalization,
                             dict(np_post_processing.DEFAULTS), class_names or {})
        try:
            manifest = manifest_lib.parse(outputs[MANIFEST][0])
        except manifest_lib.ManifestError as e:
            raise ServingError('%s: %s' % (where, e), 'FAILED_PRECONDITION') from None
        if self.normalization is not None and self.normalization != manifest.normalization:
            raise ServingError('%s is a %s whose input normalization is %r, not %r as this '
                               'client was told' % (where, manifest.network,
                                                    manifest.normalization.name,
                                                    self.normalization.name),
                               'FAILED_PRECONDITION')
        if class_names is None:
            class_names = dict(enumerate(manifest.class_names))
        return ModelInfo(meta['version'], manifest.network, manifest.input_size,
                         manifest.normalization, manifest.post_processing, class_names)

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
                if e.code != 'INVALID_ARGUMENT':
                    raise
                fresh = self.model_info(refresh=True)
                if fresh.input_hw == info.input_hw:
                    raise
                info = fresh
                boxes, scores, classes, version, timing = self._detect_client_side(rgb, info)
        if version != info.version:
            info = self.model_info(version)
        detections = pixel_detections(boxes, scores, classes, info.class_names, height, width,
                                      threshold)
        timing = {'decode': (decoded - start) * 1e3, **timing,
                  'total': (time.perf_counter() - start) * 1e3}
        model = {'name': self.model_name, 'version': version, 'signature': self.signature,
                 'network': info.network}
        return DetectionResult(width, height, detections, model, timing)

    def _detect_client_side(self, rgb, info):
        if info.normalization is None:
            raise ServingError(
                '%s version %d at %s has no export manifest (an export of an older '
                'export_model.py), so its input normalization is unknown: export it again, use '
                "signature='detect', or name the normalization (%s) with SSDClient("
                'normalization=...), NORMALIZATION=... or --normalization'
                % (self.model_name, info.version, self.address,
                   ', '.join(sorted(normalization_lib.KINDS))), 'FAILED_PRECONDITION')
        t0 = time.perf_counter()
        batch = np_preprocessing.preprocess_image(rgb, info.input_hw, info.normalization)[None]
        t1 = time.perf_counter()
        outputs, version = self.predict({IMAGES: batch}, DEFAULT_SIGNATURE)
        t2 = time.perf_counter()
        boxes, scores, classes = np_post_processing.postprocess(
            outputs[SCORES][0], outputs[BOXES][0],
            **{**info.post_processing, **self._postprocess_kwargs})
        t3 = time.perf_counter()
        timing = {'preprocess': (t1 - t0) * 1e3, 'predict': (t2 - t1) * 1e3,
                  'postprocess': (t3 - t2) * 1e3}
        return np.asarray(boxes), np.asarray(scores), np.asarray(classes), version, timing

    def _detect_in_graph(self, image, rgb):
        t0 = time.perf_counter()
        encoded = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else None
        data = upright_encoded(encoded, rgb)  # the graph's decoder ignores EXIF orientation
        t1 = time.perf_counter()
        outputs, version = self.predict({ENCODED_IMAGES: [data]}, DETECT_SIGNATURE,
                                        output_filter=DETECTION_OUTPUTS)
        t2 = time.perf_counter()
        count = int(outputs[NUM_DETECTIONS][0])
        timing = {'preprocess': (t1 - t0) * 1e3, 'predict': (t2 - t1) * 1e3, 'postprocess': 0.0}
        return (outputs[DETECTION_BOXES][0, :count], outputs[DETECTION_SCORES][0, :count],
                outputs[DETECTION_CLASSES][0, :count].astype(np.int64), version, timing)


def _versions(response):
    """[{'version', 'state'}] of a GetModelStatusResponse."""
    return [{'version': s.version, 'state': protos.ModelVersionStatus.State.Name(s.state)}
            for s in response.model_version_status]
