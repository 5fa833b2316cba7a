"""The pieces of the LiteRT export that need no runtime: the post-processing op's inputs and
attributes, and the next version of a mixed export folder."""
import numpy as np
import tensorflow as tf

from export import tflite_export
from nets import nets_factory


def test_top_k_per_class_keeps_each_class_best_scores():
    scores = np.array([[[0.5, 0.1, 0.4], [0.2, 0.7, 0.1], [0.3, 0.2, 0.5]]], np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        kept = session.run(tflite_export.top_k_per_class(tf.constant(scores), 2))
        everything = session.run(tflite_export.top_k_per_class(tf.constant(scores), 10))
    np.testing.assert_allclose(kept, [[[0.5, 0.0, 0.4], [0.0, 0.7, 0.0], [0.3, 0.2, 0.5]]])
    np.testing.assert_allclose(everything, scores)


def test_center_anchors():
    anchors = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 0.5]], np.float32)
    np.testing.assert_allclose(tflite_export.center_anchors(anchors),
                               [[0.3, 0.4, 0.4, 0.4], [0.5, 0.25, 1.0, 0.5]], atol=1e-7)


def test_postprocess_attributes_follow_the_network_and_the_detect_settings():
    params = nets_factory.get_network('ssd_300_vgg', 6).params
    attributes = tflite_export.postprocess_attributes(
        params, {'select_threshold': 0.01, 'nms_threshold': 0.45, 'pre_nms_top_k': 400,
                 'keep_top_k': 200})
    assert attributes['num_classes'] == 5 and attributes['use_regular_nms'] is True
    assert attributes['max_detections'] == attributes['detections_per_class'] == 200
    assert [attributes[k] for k in ('y_scale', 'x_scale', 'h_scale', 'w_scale')] == [
        10.0, 10.0, 5.0, 5.0]
    text = tflite_export._implements_signature(attributes)  # pylint: disable=protected-access
    assert text.startswith('name: "TFLite_Detection_PostProcess"')
    assert 'attr { key: "use_regular_nms" value { b: true } }' in text
    assert 'attr { key: "max_detections" value { i: 200 } }' in text


def test_next_version_counts_every_format(tmp_path):
    (tmp_path / '1').mkdir()
    (tmp_path / '3').mkdir()
    (tmp_path / 'notes').mkdir()
    assert tflite_export.next_version(str(tmp_path)) == 4
