"""Tests of importers/caffe_messages.py and importers/caffe_ssd.py: a .caffemodel and a
deploy.prototxt written with the release's layer names and shapes, read back without Caffe."""
import numpy as np
import pytest
from google.protobuf import text_format

from importers import caffe_messages, caffe_ssd, errors
from tests.importers import caffe_reference


@pytest.fixture(scope='module')
def blobs_300():
    return caffe_reference.seeded_blobs(300)


def test_the_message_set_reads_what_it_writes(tmp_path, blobs_300):
    path = str(tmp_path / 'VGG_VOC0712_SSD_300x300_iter_120000.caffemodel')
    caffe_reference.write_model(path, 300, blobs_300)
    net = caffe_ssd.read_net(path)
    found = caffe_ssd.blobs(net, path)
    assert {k: v.shape for k, v in found.items()} == caffe_reference.blob_shapes(300)
    for key in ('conv1_1/0', 'fc6/0', 'conv9_2_mbox_conf/1', 'conv4_3_norm/0'):
        np.testing.assert_array_equal(found[key], blobs_300[key])
    assert caffe_ssd.num_feature_layers_of(found, path) == 6
    assert caffe_ssd.num_classes_of(found, 6, path) == 21
    assert caffe_ssd.input_size(net) == (300, 300)


def test_legacy_4d_blob_dimensions_are_read():
    net = caffe_messages.NetParameter()
    layer = net.layer.add(name='conv1_1', type='Convolution')
    layer.blobs.add(num=2, channels=3, height=1, width=1, data=[1, 2, 3, 4, 5, 6])
    found = caffe_ssd.blobs(caffe_messages.NetParameter.FromString(net.SerializeToString()), 'x')
    np.testing.assert_array_equal(found['conv1_1/0'], np.arange(1, 7).reshape(2, 3, 1, 1))


def test_a_real_style_prototxt_parses_skipping_what_the_message_set_leaves_out(tmp_path):
    text = '''name: "VGG_VOC0712_SSD_300x300_deploy"
input: "data"
input_shape { dim: 1 dim: 3 dim: 300 dim: 300 }
layer {
  name: "conv1_1" type: "Convolution" bottom: "data" top: "conv1_1"
  param { lr_mult: 1 decay_mult: 1 }
  convolution_param { num_output: 64 pad: 1 kernel_size: 3
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0 } }
}
layer { name: "conv4_3_norm_mbox_loc_perm" type: "Permute"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "detection_out" type: "DetectionOutput"
  detection_output_param { num_classes: 21 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 400 }
    save_output_param { label_map_file: "data/VOC0712/labelmap_voc.prototxt" }
    code_type: CENTER_SIZE keep_top_k: 200 confidence_threshold: 0.01 } }
'''
    path = tmp_path / 'deploy.prototxt'
    path.write_text(text)
    net = caffe_ssd.read_net(str(path), text=True)
    assert caffe_ssd.input_size(net) == (300, 300)
    assert caffe_ssd.conv_geometry(net.layer[0]) == (64, 3, 1, 1, 1)
    detection = net.layer[2].detection_output_param
    assert detection.code_type == caffe_messages.PriorBoxParameter.CENTER_SIZE
    assert detection.nms_param.top_k == 400
    caffe_ssd.check_layers(net, str(path))


@pytest.mark.parametrize('size, count', [(300, 6), (512, 7)])
def test_prior_boxes_of_the_release(tmp_path, size, count):
    path = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(path, size)
    priors = caffe_ssd.prior_boxes(caffe_ssd.read_net(path, text=True), count, path)
    assert len(priors) == count
    assert priors[0].min_size == pytest.approx((30.0,) if size == 300 else (35.84,))
    assert priors[0].ratios == (2.0, 0.5)
    assert priors[1].ratios == (2.0, 0.5, 3.0, 1.0 / 3.0)
    assert priors[-1].step == float(size)
    assert priors[0].variance == pytest.approx((0.1, 0.1, 0.2, 0.2))


def test_ssd512_is_recognised_by_its_conv10(tmp_path):
    blobs = caffe_reference.seeded_blobs(512)
    assert caffe_ssd.num_feature_layers_of(blobs, 'x') == 7
    assert caffe_ssd.variable_blobs(7)['conv12/conv12_2/weights'] == 'conv10_2/0'
    assert caffe_ssd.variable_blobs(7)['conv12_box/cls/biases'] == 'conv10_2_mbox_conf/1'


def test_truncated_model_is_one_clear_error(tmp_path, blobs_300):
    path = tmp_path / 'model.caffemodel'
    caffe_reference.write_model(str(path), 300, blobs_300)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(errors.WeightsError, match='model.caffemodel: not a Caffe model'):
        caffe_ssd.read_net(str(path))


def test_a_foreign_file_is_one_clear_error(tmp_path):
    path = tmp_path / 'photo.caffemodel'
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * 4)
    with pytest.raises(errors.WeightsError, match='photo.caffemodel: not a Caffe model'):
        caffe_ssd.read_net(str(path))


def test_the_v1_layer_format_is_named(tmp_path):
    net = caffe_messages.NetParameter()
    net.layers.add(name='conv1_1')
    path = tmp_path / 'old.caffemodel'
    path.write_bytes(net.SerializeToString())
    with pytest.raises(errors.WeightsError, match='old V1 layer format'):
        caffe_ssd.read_net(str(path))


def test_a_prototxt_of_another_network_is_refused(tmp_path, blobs_300):
    model = str(tmp_path / 'model.caffemodel')
    caffe_reference.write_model(model, 300, blobs_300)
    deploy = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(deploy, 512)
    with pytest.raises(errors.WeightsError,
                       match=r'deploy.prototxt: layer conv8_2 is num_output 256 kernel 3 pad 1 '
                             r'stride 2 dilation 1, in .*model.caffemodel it is num_output 256 '
                             r'kernel 3 pad 0 stride 1 dilation 1'):
        caffe_ssd.check_prototxt(caffe_ssd.read_net(deploy, text=True),
                                 caffe_ssd.read_net(model), model, deploy, 6)


def test_a_prototxt_with_another_class_count_is_refused(tmp_path, blobs_300):
    model = str(tmp_path / 'model.caffemodel')
    caffe_reference.write_model(model, 300, blobs_300)
    deploy = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(deploy, 300, num_classes=81, dataset='coco')
    with pytest.raises(errors.WeightsError,
                       match=r'deploy.prototxt: layer conv4_3_norm_mbox_conf has num_output 324 '
                             r'and kernel 3, but .*model.caffemodel has weights 84x512x3x3'):
        caffe_ssd.check_prototxt(caffe_ssd.read_net(deploy, text=True),
                                 caffe_ssd.read_net(model), model, deploy, 6)


def test_other_geometry_than_the_networks_is_refused(tmp_path):
    net = caffe_reference.build_net(300)
    for layer in net.layer:
        if layer.name == 'conv6_2':
            layer.convolution_param.pad[0] = 0
    with pytest.raises(errors.WeightsError,
                       match='layer conv6_2 is kernel 3 pad 0 stride 2 dilation 1, but '
                             'ssd_300_vgg has kernel 3 pad 1 stride 2 dilation 1 there'):
        caffe_ssd.check_geometry(net, 'deploy.prototxt', 6, 'ssd_300_vgg')


def test_unsupported_box_coding_is_refused():
    net = caffe_reference.build_net(300)
    net.layer[-1].detection_output_param.code_type = caffe_messages.PriorBoxParameter.CORNER
    with pytest.raises(errors.WeightsError, match='code_type is not CENTER_SIZE'):
        caffe_ssd.check_layers(net, 'deploy.prototxt')


def test_the_message_set_text_round_trip():
    net = caffe_reference.build_net(512)
    again = caffe_messages.NetParameter()
    text_format.Parse(text_format.MessageToString(net), again)
    assert again == net
