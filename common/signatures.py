"""The serving contract shared by the exporter, the model server and the client (no TensorFlow).

Names of the two signatures of an SSD export and of their tensors (docs/export-and-serving.md), the
SavedModel tag, the gRPC message limit, the version folders of a model base path
(`<base>/<version>/saved_model.pb`) and the error type of the serving API.
"""
import os

SERVE_TAG = 'serve'
PREDICT_METHOD = 'tensorflow/serving/predict'
SAVED_MODEL_FILENAME = 'saved_model.pb'
DEFAULT_MODEL_NAME = 'ssd'
DEFAULT_GRPC_PORT = 8500
# gRPC message limit of the model server and the client, both ways (gRPC's default is 4 MB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
INT64_MAX = 2 ** 63 - 1

# serving_default: images float32 [None, H, W, 3] -> scores [None, A, C], boxes [None, A, 4].
DEFAULT_SIGNATURE = 'serving_default'
IMAGES = 'images'
SCORES = 'scores'
BOXES = 'boxes'
# detect: encoded_images string [None] -> detections (TF Object Detection API names), the
# class names string [None, C] and the export manifest string [None] (common.manifest).
DETECT_SIGNATURE = 'detect'
ENCODED_IMAGES = 'encoded_images'
DETECTION_BOXES = 'detection_boxes'
DETECTION_SCORES = 'detection_scores'
DETECTION_CLASSES = 'detection_classes'
NUM_DETECTIONS = 'num_detections'
CLASS_NAMES = 'class_names'
MANIFEST = 'manifest'
DETECTION_OUTPUTS = (DETECTION_BOXES, DETECTION_SCORES, DETECTION_CLASSES, NUM_DETECTIONS)
SIGNATURES = (DEFAULT_SIGNATURE, DETECT_SIGNATURE)


class ServingError(Exception):
    """A refused serving request.

    Attributes:
      code: name of the gRPC status code it maps to ('INVALID_ARGUMENT', 'NOT_FOUND', ...).
    """

    def __init__(self, message, code='UNKNOWN'):
        super().__init__(message)
        self.code = code


def parse_version(name):
    """The version number a folder name stands for, or None.

    Versions are plain ASCII decimal numbers within int64, written without leading zeros ('0',
    '7', '42'), as TF Serving reads them; '²', '007', '-1', '1e3' or 20 digits are no version.
    """
    if not (name.isascii() and name.isdigit()) or (len(name) > 1 and name[0] == '0'):
        return None
    version = int(name)
    return version if version <= INT64_MAX else None


def scan_versions(base_path):
    """Reads the version folders of a model base path.

    Returns:
      (versions, ignored): dict version -> folder path of the versions holding a saved_model.pb,
      and dict name -> why it is no version, of the other visible entries that are or may be
      folders: names that are no version number, and entries that cannot be read (a symbolic
      link loop, no permission). Hidden ones, such as an export's `.tmp-*` folder, and plain
      files are skipped silently.
    """
    versions, ignored = {}, {}
    try:
        entries = list(os.scandir(base_path))
    except (FileNotFoundError, NotADirectoryError):
        return versions, ignored
    for entry in entries:
        if entry.name.startswith('.'):
            continue
        try:
            if not entry.is_dir():
                continue
        except OSError as e:  # ELOOP, EACCES: the entry cannot be a version
            ignored[entry.name] = 'cannot be read (%s)' % (e.strerror or e)
            continue
        version = parse_version(entry.name)
        if version is None:
            ignored[entry.name] = ('"%s" is no version number (ASCII digits within int64, no '
                                   'leading zeros)' % entry.name)
        elif os.path.isfile(os.path.join(entry.path, SAVED_MODEL_FILENAME)):
            versions[version] = entry.path
    return versions, dict(sorted(ignored.items()))


def list_versions(base_path):
    """The sorted versions under base_path that hold a saved_model.pb."""
    return sorted(scan_versions(base_path)[0])


def resolve_export(path):
    """The SavedModel folder of `path`: itself, or its highest integer version folder.

    Raises:
      ValueError: naming the path when it holds no saved_model.pb.
    """
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILENAME)):
        return path
    versions, _ = scan_versions(path)
    if not versions:
        raise ValueError('%s holds no %s (give an export folder such as exports/ssd/1, or its '
                         'base folder exports/ssd)' % (path, SAVED_MODEL_FILENAME))
    return versions[max(versions)]
