"""Turns a downloaded detector into a train dir: read, recognise, rename, check, write.

    import_weights(source, input_path, train_dir, prototxt=None, labels_file=None,
                   model_name=None)

The network is recognised from the file (SSD300 or SSD512 from its layers, the class count from
its heads, for Caffe the anchor set from its PriorBox layers) and is one of the networks
nets_factory.PUBLISHED_NETWORKS registers for the source; `model_name` is only checked
against it.
Class names are the source's own list for the published class counts (VOC's 20, COCO's 80, or
COCO's 91 ids with their gaps for torchvision) unless `labels_file` gives them.
"""
import collections
import logging
import os

from common import labels as labels_lib
from datasets import coco, pascalvoc
from datasets import train_dir as train_dir_lib
from importers import (
    caffe_ssd,
    errors,
    ssd_tensorflow,
    torchvision_ssd,
    train_dir_writer,
    weights,
)
from nets import nets_factory

SOURCES = (torchvision_ssd.SOURCE, caffe_ssd.SOURCE, ssd_tensorflow.SOURCE)
# Default class lists by class count (background included).
DEFAULT_LABELS = {21: ('VOC', pascalvoc.voc_labels), 81: ('COCO', coco.coco_labels),
                  91: ('COCO category ids', coco.coco_category_labels)}

# What a source file holds once read: the project variables' sources, the recognised network.
SourceWeights = collections.namedtuple('SourceWeights',
                                       'tensors sources layout network num_classes')
ImportResult = collections.namedtuple('ImportResult', 'network num_classes checkpoint labels')


def _networks(source, num_feature_layers):
    """The networks registered for `source` with this many feature layers (6: SSD300)."""
    return [name for name in nets_factory.PUBLISHED_NETWORKS[source]
            if len(nets_factory.get_network(name).params.feat_layers) == num_feature_layers]


def _torchvision(state_dict, path):
    num_classes = torchvision_ssd.num_classes_of(state_dict, path)
    network = _networks(torchvision_ssd.SOURCE, torchvision_ssd.NUM_FEATURE_LAYERS)[0]
    return SourceWeights(state_dict, torchvision_ssd.variable_keys(), weights.OIHW, network,
                         num_classes)


def _read_torchvision(path, unused_prototxt):
    return _torchvision(torchvision_ssd.read_state_dict(path), path)


def _read_ssd_tensorflow(path, unused_prototxt):
    tensors = ssd_tensorflow.read_checkpoint(path)
    scope, count = ssd_tensorflow.scope_of(tensors, path)
    num_classes = ssd_tensorflow.num_classes_of(tensors, scope, count, path)
    network = _networks(ssd_tensorflow.SOURCE, count)[0]
    return SourceWeights(tensors, ssd_tensorflow.variable_names(scope, count), weights.HWIO,
                         network, num_classes)


def _caffe_network(priors, num_classes, count, evidence):
    """The registered Caffe network whose anchors are `priors` (or, without PriorBox layers,
    the VOC or COCO one by class count)."""
    candidates = _networks(caffe_ssd.SOURCE, count)
    if priors is None:
        by_classes = [name for name in candidates
                      if nets_factory.get_network(name).params.num_classes == num_classes]
        if len(by_classes) != 1:
            raise errors.WeightsError(
                '%s has no PriorBox layers and %d classes, which does not tell the anchor set; '
                'pass its deploy.prototxt as --prototxt' % (evidence, num_classes))
        return by_classes[0]
    for name in candidates:
        params = nets_factory.get_network(name).params
        if caffe_ssd.same_priors(priors, caffe_ssd.params_priors(params)):
            return name
    raise errors.WeightsError(
        '%s: its PriorBox layers (min_size %s, step %s) match none of the anchor sets of %s' % (
            evidence, ', '.join('%g' % p.min_size[0] for p in priors),
            ', '.join('%g' % p.step for p in priors), ', '.join(candidates)))


def _read_caffe(path, prototxt):
    model = caffe_ssd.read_net(path)
    tensors = caffe_ssd.blobs(model, path)
    count = caffe_ssd.num_feature_layers_of(tensors, path)
    num_classes = caffe_ssd.num_classes_of(tensors, count, path)
    priors, evidence = caffe_ssd.prior_boxes(model, count, path), path
    nets = [(model, path)]
    if prototxt:
        deploy = caffe_ssd.read_net(prototxt, text=True)
        caffe_ssd.check_prototxt(deploy, model, path, prototxt, count)
        priors = caffe_ssd.prior_boxes(deploy, count, prototxt) or priors
        evidence = prototxt
        nets.append((deploy, prototxt))
        size = caffe_ssd.input_size(deploy)
        expected = (300, 300) if count == 6 else (512, 512)
        if size is not None and size != expected:
            raise errors.WeightsError('%s: input %dx%d, but %s is an SSD%d model' % (
                prototxt, size[0], size[1], path, expected[0]))
    network = _caffe_network(priors, num_classes, count, evidence)
    for net, source in nets:
        caffe_ssd.check_geometry(net, source, count, network)
        caffe_ssd.check_layers(net, source)
    return SourceWeights(tensors, caffe_ssd.variable_blobs(count), weights.OIHW, network,
                         num_classes)


_READERS = {torchvision_ssd.SOURCE: _read_torchvision, caffe_ssd.SOURCE: _read_caffe,
            ssd_tensorflow.SOURCE: _read_ssd_tensorflow}


def _labels(labels_file, num_classes, path):
    """The class names: `labels_file`'s, or the default list of this class count."""
    if labels_file is None:
        if num_classes not in DEFAULT_LABELS:
            raise errors.WeightsError('%s has %d classes (background included), not a published '
                                      'class list (%s); name them with --labels_file' % (
                                          path, num_classes, ', '.join(
                                              '%d %s' % (n, name) for n, (name, _)
                                              in sorted(DEFAULT_LABELS.items()))))
        return DEFAULT_LABELS[num_classes][1]()
    try:
        labels = labels_lib.read_labels(labels_file)
    except labels_lib.LabelsError as error:
        raise errors.WeightsError('--labels_file %s' % error) from None
    if max(labels) + 1 != num_classes:
        raise errors.WeightsError('--labels_file %s has ids up to %d (%d classes with the '
                                  'background), but %s has %d classes' % (
                                      labels_file, max(labels), max(labels) + 1, path,
                                      num_classes))
    return labels


def check_inputs(source, input_path, train_dir, prototxt=None, labels_file=None):
    """The checks that need no reading of the weights: raises errors.WeightsError."""
    if source not in _READERS:
        raise errors.WeightsError('unknown source %r; choose one of %s' % (source,
                                                                             ', '.join(SOURCES)))
    if source == ssd_tensorflow.SOURCE:
        exists = os.path.exists(input_path) or os.path.exists(input_path + '.index')
    else:
        exists = os.path.isfile(input_path)
    if not exists:
        raise errors.WeightsError('--input %s does not exist' % input_path)
    if prototxt is not None:
        if source != caffe_ssd.SOURCE:
            raise errors.WeightsError('--prototxt is for --source=caffe only')
        if not os.path.isfile(prototxt):
            raise errors.WeightsError('--prototxt %s does not exist' % prototxt)
    if labels_file is not None and not os.path.isfile(labels_file):
        raise errors.WeightsError('--labels_file %s does not exist' % labels_file)
    train_dir_writer.check_new(train_dir)


def import_weights(source, input_path, train_dir, prototxt=None, labels_file=None,
                   model_name=None):
    """Imports a source's weights file as a new train dir.

    Args:
        source: one of SOURCES.
        input_path: the .pth, .caffemodel or checkpoint (prefix or folder).
        train_dir: the new folder (absent or empty).
        prototxt: Caffe's deploy.prototxt (optional; checked against the model).
        labels_file: class names (id:name lines) instead of the source's own list.
        model_name: the network the file must be (a check).

    Returns:
        ImportResult.

    Raises:
        errors.WeightsError: one line naming the file and what is wrong; nothing is written.
    """
    check_inputs(source, input_path, train_dir, prototxt, labels_file)
    return _write(recognise(source, input_path, prototxt), source, input_path, train_dir,
                  labels_file, model_name)


def recognise(source, input_path, prototxt=None):
    """Reads a source's file and recognises its network (nothing is written).

    Returns:
        SourceWeights: the file's tensors, the project variable -> tensor map, the weight
        layout, the network name and the class count.

    Raises:
        errors.WeightsError: as import_weights.
    """
    return _READERS[source](input_path, prototxt)


def import_torchvision_state_dict(state_dict, train_dir, labels_file=None, model_name=None,
                                  path='state dict'):
    """import_weights of a torchvision state dict already in memory (key -> numpy array, what
    torchvision_ssd.read_state_dict returns): no torch needed. `path` names it in messages."""
    train_dir_writer.check_new(train_dir)
    return _write(_torchvision(state_dict, path), torchvision_ssd.SOURCE, path, train_dir,
                  labels_file, model_name)


def _write(found, source, path, train_dir, labels_file, model_name):
    """Checks the recognised SourceWeights against the flags and writes the train dir."""
    if model_name is not None and model_name != found.network:
        raise errors.WeightsError('--model_name %s, but %s is a %s' % (model_name, path,
                                                                      found.network))
    labels = _labels(labels_file, found.num_classes, path)
    values = weights.convert(found.tensors, found.sources, found.layout, path)
    network = nets_factory.get_network(found.network, found.num_classes)
    info = train_dir_lib.describe_import(
        found.network, network.params, source,
        os.path.abspath(path) if os.path.exists(path) else path)
    checkpoint = train_dir_writer.write(train_dir, network, values, labels, info)
    logging.info('Imported %d variables of %s from %s', len(values), found.network, path)
    return ImportResult(found.network, found.num_classes, checkpoint, labels)


def class_head_scopes(network_name):
    """The class heads of a network (`<scope>/conv4_3_box/cls`, ...), comma separated: the
    --checkpoint_exclude_scopes of fine-tuning a detector on other classes (their width is
    boxes x classes)."""
    params = nets_factory.get_network(network_name).params
    return ','.join('%s/%s_box/cls' % (network_name, layer) for layer in params.feat_layers)
