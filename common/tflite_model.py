"""A LiteRT (TFLite) SSD export on disk and its runtime (no TensorFlow).

An export version folder (export/tflite_export.py) holds `model.tflite` (raw: scores and boxes
of every anchor), `detect.tflite` (post-processing in the model: boxes, classes, scores,
count), `labels.txt` and `ssd_manifest.json` (the export manifest with a `tflite` section).
The runtime is the LiteRT interpreter of the optional `ai-edge-litert` package
(requirements-tflite.txt), imported only when a model is loaded.
"""
import logging
import os

import numpy as np

from common import np_post_processing

QUANTIZATIONS = ('none', 'float16', 'int8')
VARIANTS = ('raw', 'detect')
FILENAMES = {'raw': 'model.tflite', 'detect': 'detect.tflite'}
MANIFEST_FILENAME = 'ssd_manifest.json'
DETECT_OUTPUTS = ('detection_boxes', 'detection_classes', 'detection_scores', 'num_detections')
# Output names of each variant, in the model's output order.
OUTPUTS = {'raw': ('scores', 'boxes'), 'detect': DETECT_OUTPUTS}
# TFLite_Detection_PostProcess numbers the classes without the background: class id - 1.
DETECT_CLASS_OFFSET = 1
REQUIREMENTS_FILE = 'requirements-tflite.txt'


class RuntimeMissing(ImportError):
    """The LiteRT runtime (ai-edge-litert) is not installed; the message says how to get it."""


def interpreter_class():
    """ai_edge_litert's Interpreter.

    Raises:
      RuntimeMissing: naming the package and the requirement file.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise RuntimeMissing(
            'running a .tflite model needs the LiteRT runtime, the optional package '
            'ai-edge-litert: pip install -r %s (import failed: %s)'
            % (REQUIREMENTS_FILE, error)) from None
    return Interpreter


def embedded_metadata(path):
    """The metadata entries embedded in a .tflite file: dict name -> bytes (the flatbuffer's
    Model.metadata, read with the runtime's schema; needs ai-edge-litert)."""
    interpreter_class()
    from ai_edge_litert import schema_py_generated as schema  # pylint: disable=import-outside-toplevel
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    model = schema.Model.GetRootAs(data, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        entries[entry.Name().decode('utf-8')] = model.Buffers(entry.Buffer()).DataAsNumpy() \
            .tobytes()
    return entries


def read_manifest(model_path):
    """The manifest text of a .tflite export: the file beside it, else the one embedded in it,
    else None."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), MANIFEST_FILENAME)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            return f.read()
    embedded = embedded_metadata(model_path).get(MANIFEST_FILENAME)
    return None if embedded is None else embedded.decode('utf-8')


class TFLiteModel:
    """One .tflite SSD model in a LiteRT interpreter (XNNPACK on CPU).

    Attributes:
      variant: 'raw' (outputs scores [1, A, C], boxes [1, A, 4]) or 'detect' (boxes [1, K, 4],
        classes [1, K], scores [1, K], count [1]).
      input_shape: [1, H, W, 3].
    """

    def __init__(self, path, num_threads=None):
        """Loads `path`.

        Raises:
          RuntimeMissing: no ai-edge-litert.
          ValueError: not a .tflite file of this project's two variants.
        """
        interpreter = interpreter_class()
        if not os.path.isfile(path):
            raise ValueError('%s does not exist' % path)
        self._load(interpreter, path, num_threads)
        if self.variant == 'detect' and num_threads != 1:
            # LiteRT 2.3.0's TFLite_Detection_PostProcess (regular NMS) loses a class's
            # detections when the interpreter has several threads (measured: with 2 threads the
            # last class of a 3-class detector is missing): detect.tflite runs on one thread.
            logging.info('%s: running TFLite_Detection_PostProcess on 1 thread (several '
                         'threads drop detections in LiteRT 2.3.0)', path)
            self._load(interpreter, path, 1)
        self.num_threads = 1 if self.variant == 'detect' else num_threads

    def _load(self, interpreter, path, num_threads):
        try:
            self.interpreter = interpreter(model_path=path, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError('%s is not a loadable .tflite model: %s' % (path, error)) from None
        inputs = self.interpreter.get_input_details()
        outputs = {d['name']: d['index'] for d in self.interpreter.get_output_details()}
        for variant, names in OUTPUTS.items():
            if len(inputs) == 1 and set(outputs) == set(names):
                self.variant = variant
                self._outputs = [outputs[name] for name in names]
                break
        else:
            raise ValueError('%s has inputs %s and outputs %s; an SSD .tflite of '
                             'export_model.py has `images` and %s'
                             % (path, [d['name'] for d in inputs], sorted(outputs),
                                ' or '.join(str(list(n)) for n in OUTPUTS.values())))
        self._input = inputs[0]
        self.input_shape = [int(v) for v in self._input['shape']]

    def run(self, images):
        """Runs one batch float32 [1, H, W, 3] (eval-preprocessed).

        Returns:
          raw: (scores [1, A, C], boxes [1, A, 4]); detect: (boxes [1, K, 4], classes [1, K],
          scores [1, K], count [1]), float32 arrays (copies).
        """
        self.interpreter.set_tensor(self._input['index'],
                                    np.asarray(images, self._input['dtype']))
        self.interpreter.invoke()
        return tuple(np.array(self.interpreter.get_tensor(index)) for index in self._outputs)

    def detections(self, images, post_processing):
        """Detections of one preprocessed image batch [1, H, W, 3].

        Args:
          post_processing: keyword arguments of np_post_processing.postprocess (raw variant;
            the detect variant's op has its own, fixed at export).

        Returns:
          boxes float32 [k, 4] yxyx clipped to [0, 1], scores float32 [k], classes int64 [k]
          (project class ids, 0 = background), by descending score.
        """
        outputs = self.run(images)
        if self.variant == 'raw':
            scores, boxes = outputs
            return np_post_processing.postprocess(scores[0], boxes[0], **post_processing)
        boxes, classes, scores, count = outputs
        count = int(count[0])
        return (np.clip(boxes[0, :count], 0.0, 1.0), scores[0, :count],
                classes[0, :count].astype(np.int64) + DETECT_CLASS_OFFSET)
