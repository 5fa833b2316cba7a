"""The SSD authors' Caffe models import as the same network as the other sources' files.

A .caffemodel (+ deploy.prototxt) with the release's layer names and shapes is written through
the project's message set. SSD300: the seeded torchvision weights laid out as the Caffe model
(conv1_1 taking BGR) give the same outputs as their torchvision import. SSD512: the same Caffe
weights laid out as an SSD-Tensorflow checkpoint (RGB) give the same outputs as its import.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from common import np_preprocessing
from datasets import train_dir as train_dir_lib
from importers import errors, import_lib
from nets import nets_factory
from tests.importers import caffe_reference, ssd_tensorflow_reference
from tests.importers import torchvision_reference as reference

# torchvision's module keys in the release's layer order (caffe_reference.convolutions): VGG,
# fc6, fc7, the extra blocks, then per feature layer its loc and conf heads.
_TORCHVISION_ORDER = (
    ['backbone.features.%d' % i for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)]
    + ['backbone.extra.0.%s' % i for i in ('1', '3', '5', '7.1', '7.3')]
    + ['backbone.extra.%d.%d' % (block, i) for block in range(1, 5) for i in (0, 2)]
    + [key for i in range(6) for key in ('head.regression_head.module_list.%d' % i,
                                         'head.classification_head.module_list.%d' % i)])


def _ssd_tensorflow_name(caffe_layer):
    """The SSD-Tensorflow variable scope of a release layer (conv6_1 -> block8/conv1x1)."""
    if caffe_layer in ('fc6', 'fc7'):
        return 'conv' + caffe_layer[2:]
    if caffe_layer.endswith(('_mbox_loc', '_mbox_conf')):
        source, head = caffe_layer.rsplit('_mbox_', 1)
        block = {'conv4_3_norm': 'block4', 'fc7': 'block7'}.get(source) or \
            'block%d' % (int(source[4:].split('_')[0]) + 2)
        return '%s_box/conv_%s' % (block, 'loc' if head == 'loc' else 'cls')
    block, index = caffe_layer[4:].split('_')
    if int(block) <= 5:
        return 'conv%s/%s' % (block, caffe_layer)
    return 'block%d/%s' % (int(block) + 2, 'conv1x1' if index == '1' else 'conv3x3')


def _run(train_dir, image):
    """(logits, locs) of the network a train dir holds, on one RGB image, with its own input."""
    info, _ = train_dir_lib.read(train_dir)
    network = nets_factory.get_network(info['network'], info['num_classes'])
    size = network.params.img_shape
    inputs = np_preprocessing.preprocess_image(image, size, network.params.normalization)
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, size[0], size[1], 3])
        logits, locs, _ = network.net(images)
        with tf.compat.v1.Session() as session:
            tf.compat.v1.train.Saver().restore(session, tf.train.latest_checkpoint(train_dir))
            return network.name, session.run([logits, locs], {images: inputs[None]})


def _assert_same_outputs(first, second):
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(b).max())


def test_ssd300_voc_caffemodel_is_the_torchvision_network(tmp_path):
    state_dict = reference.seeded_state_dict(num_classes=21)
    convs = caffe_reference.convolutions(300)
    assert len(convs) == len(_TORCHVISION_ORDER)
    blobs = {'conv4_3_norm/0': state_dict['backbone.scale_weight']}
    for (name, *_), key in zip(convs, _TORCHVISION_ORDER):
        blobs[name + '/0'] = state_dict[key + '.weight']
        blobs[name + '/1'] = state_dict[key + '.bias']
    blobs['conv1_1/0'] = blobs['conv1_1/0'][:, ::-1]        # Caffe's first layer takes BGR
    assert {k: v.shape for k, v in blobs.items()} == caffe_reference.blob_shapes(300)
    model = str(tmp_path / 'VGG_VOC0712_SSD_300x300_iter_120000.caffemodel')
    caffe_reference.write_model(model, 300, blobs)
    deploy = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(deploy, 300)

    result = import_lib.import_weights('caffe', model, str(tmp_path / 'caffe'), prototxt=deploy)
    assert (result.network, result.num_classes) == ('ssd_300_vgg_caffe_voc', 21)
    assert result.labels[1] == 'aeroplane' and result.labels[20] == 'tvmonitor'
    import_lib.import_torchvision_state_dict(state_dict, str(tmp_path / 'torchvision'))
    image = reference.crops()[0]
    name, caffe_outputs = _run(str(tmp_path / 'caffe'), image)
    other, torchvision_outputs = _run(str(tmp_path / 'torchvision'), image)
    assert (name, other) == ('ssd_300_vgg_caffe_voc', 'ssd_300_vgg_torchvision')
    _assert_same_outputs(caffe_outputs, torchvision_outputs)


def test_ssd512_caffemodel_is_the_ssd_tensorflow_network(tmp_path):
    blobs = caffe_reference.seeded_blobs(512)
    model = str(tmp_path / 'VGG_VOC0712_SSD_512x512_iter_120000.caffemodel')
    caffe_reference.write_model(model, 512, blobs)
    values = {}
    for key, blob in blobs.items():
        layer, index = key.split('/')
        if layer == 'conv4_3_norm':
            values['ssd_512_vgg/block4_box/L2Normalization/gamma'] = blob
            continue
        name = 'ssd_512_vgg/%s/%s' % (_ssd_tensorflow_name(layer),
                                      'weights' if index == '0' else 'biases')
        values[name] = np.transpose(blob, (2, 3, 1, 0)) if blob.ndim == 4 else blob
    first = 'ssd_512_vgg/conv1/conv1_1/weights'
    values[first] = values[first][:, :, ::-1]               # SSD-Tensorflow's takes RGB
    assert {k: v.shape for k, v in values.items()} == ssd_tensorflow_reference.variable_shapes(512)
    prefix = str(tmp_path / 'ssd_512_vgg.ckpt')
    ssd_tensorflow_reference.write_checkpoint(prefix, 512, values)

    result = import_lib.import_weights('caffe', model, str(tmp_path / 'caffe'))
    assert result.network == 'ssd_512_vgg_caffe_voc'    # from the model's PriorBox layers
    import_lib.import_weights('ssd_tensorflow', prefix, str(tmp_path / 'ssdtf'))
    image = reference.crops()[-1]
    name, caffe_outputs = _run(str(tmp_path / 'caffe'), image)
    other, ssdtf_outputs = _run(str(tmp_path / 'ssdtf'), image)
    assert (name, other) == ('ssd_512_vgg_caffe_voc', 'ssd_512_vgg_ssdtf')
    _assert_same_outputs(caffe_outputs, ssdtf_outputs)


@pytest.mark.parametrize('size, dataset, network', [
    (300, 'voc', 'ssd_300_vgg_caffe_voc'), (300, 'coco', 'ssd_300_vgg_caffe_coco'),
    (512, 'voc', 'ssd_512_vgg_caffe_voc'), (512, 'coco', 'ssd_512_vgg_caffe_coco')])
def test_each_release_model_is_recognised_by_its_prior_boxes(tmp_path, size, dataset, network):
    classes = 81 if dataset == 'coco' else 21
    model = str(tmp_path / 'model.caffemodel')
    caffe_reference.write_model(model, size, caffe_reference.tiny_blobs(size, classes, dataset),
                                num_classes=classes, dataset=dataset)
    found = import_lib.recognise('caffe', model)
    assert (found.network, found.num_classes) == (network, classes)
    assert import_lib.DEFAULT_LABELS[classes][1]()[1] == ('person' if classes == 81
                                                          else 'aeroplane')


@pytest.mark.parametrize('classes, network', [(21, 'ssd_300_vgg_caffe_voc'),
                                              (81, 'ssd_300_vgg_caffe_coco')])
def test_without_prior_boxes_the_class_count_tells_the_anchors(tmp_path, classes, network):
    model = str(tmp_path / 'model.caffemodel')
    dataset = 'coco' if classes == 81 else 'voc'
    caffe_reference.write_model(model, 300, caffe_reference.tiny_blobs(300, classes, dataset),
                                num_classes=classes, dataset=dataset, priors=False)
    assert import_lib.recognise('caffe', model).network == network


def test_without_prior_boxes_another_class_count_asks_for_the_prototxt(tmp_path):
    model = str(tmp_path / 'model.caffemodel')
    caffe_reference.write_model(model, 300, caffe_reference.tiny_blobs(300, 5), num_classes=5,
                                priors=False)
    with pytest.raises(errors.WeightsError, match='has no PriorBox layers and 5 classes, which '
                                                  'does not tell the anchor set; pass its '
                                                  'deploy.prototxt as --prototxt'):
        import_lib.recognise('caffe', model)
    deploy = str(tmp_path / 'deploy.prototxt')
    caffe_reference.write_prototxt(deploy, 300, num_classes=5)
    assert import_lib.recognise('caffe', model, deploy).network == 'ssd_300_vgg_caffe_voc'


def test_prior_boxes_of_no_registered_network_are_refused(tmp_path):
    net = caffe_reference.build_net(300, caffe_reference.tiny_blobs(300))
    for layer in net.layer:
        if layer.name == 'conv4_3_norm_mbox_priorbox':
            layer.prior_box_param.min_size[0] = 25
    model = tmp_path / 'odd.caffemodel'
    model.write_bytes(net.SerializeToString())
    with pytest.raises(errors.WeightsError, match=r'odd.caffemodel: its PriorBox layers '
                                                  r'\(min_size 25, 60, 111'):
        import_lib.import_weights('caffe', str(model), str(tmp_path / 'train'))
    assert sorted(os.listdir(tmp_path)) == ['odd.caffemodel']
