"""Keys of the dicts passed between packages: samples, batches and detections.

One name per field, as the TF Object Detection API's standard_fields.py does, so a key
is not retyped in every module. TFRecord feature keys are in datasets/record_schema.py.

Samples (dataset_factory.parse_record, then the preprocessing) hold IMAGE, SHAPE, BOXES,
LABELS, DIFFICULT, TRUNCATED, FILENAME and SOURCE_ID; training batches add TARGET_LABELS and
TARGET_LOCS, evaluation batches NUM_BOXES. Detections (nets.post_processing, the
SavedModel's `detect` signature) hold the DETECTION_FIELDS, the names the TF Object
Detection API uses.
"""

# Samples and batches.
IMAGE = 'image'                  # uint8 [H, W, 3] read; float32 [S, S, 3] preprocessed.
SHAPE = 'shape'                  # int32 [3]: height, width, channels of the decoded image.
BOXES = 'boxes'                  # float32 [N, 4] ground truth ymin, xmin, ymax, xmax in [0, 1].
LABELS = 'labels'                # int64 [N] class ids (0 = background).
DIFFICULT = 'difficult'          # int64 [N] 1 for objects VOC metrics ignore.
TRUNCATED = 'truncated'          # int64 [N] 1 for objects cut by the image border.
FILENAME = 'filename'            # string [] stored name of the image.
SOURCE_ID = 'source_id'          # string [] id of the image in its data set ('' if unknown).
NUM_BOXES = 'num_boxes'          # int32 [] ground-truth boxes before padding (eval batches).
TARGET_LABELS = 'target_labels'  # int64 [A] matched class per anchor, -1 ignored (training).
TARGET_LOCS = 'target_locs'      # float32 [A, 4] encoded offsets per anchor (training).

# Fields with one entry per box: they follow their boxes when boxes are dropped or padded.
PER_BOX_FIELDS = (LABELS, DIFFICULT, TRUNCATED)

# Detections, K per image, zero padded after NUM_DETECTIONS.
DETECTION_BOXES = 'detection_boxes'      # float32 [B, K, 4] ymin, xmin, ymax, xmax in [0, 1].
DETECTION_SCORES = 'detection_scores'    # float32 [B, K].
DETECTION_CLASSES = 'detection_classes'  # float32 [B, K] class ids (>= 1).
NUM_DETECTIONS = 'num_detections'        # float32 [B].

DETECTION_FIELDS = (DETECTION_BOXES, DETECTION_SCORES, DETECTION_CLASSES, NUM_DETECTIONS)
