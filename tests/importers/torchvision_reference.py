"""The torchvision reference of the equivalence tests: seeded weights, photo crops, the fixture.

Shared by the tests (the project's environment) and by make_torchvision_reference.py (an
environment with torch and torchvision), so it imports only numpy, OpenCV, matplotlib's sample
data and importers.torchvision_ssd (numpy only). The weights are never stored: both sides
regenerate them from the seed.
"""
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zlib

import cv2
import numpy as np

from importers import torchvision_ssd, vgg_layers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, 'fixtures', 'torchvision_ssd300_detections.json')
SEED = 2016
NUM_CLASSES = 91
# Detections per crop the fixture keeps (torchvision's top ones by score).
TOP_DETECTIONS = 20
# Gains of the seeded weights: the first conv scales the 0-255 input down to unit activations,
# He-style convs keep them there (rms 1-3 at the feature layers), and the heads' gains give class
# logits of standard deviation ~1 (top scores 0.1-0.5: neither all background nor saturated)
# and small box offsets.
INPUT_GAIN = 1.0 / 60.0
CLS_GAIN = 0.6
LOC_GAIN = 0.5
# 300x300 crops (top, left) of matplotlib's sample photo grace_hopper.jpg (600x512), and the
# whole photo (None), which both sides resize to 300x300 first.
PHOTO = 'grace_hopper.jpg'
CROPS = ((0, 106), (200, 0), (300, 212), None)
CROP_SIZE = 300

# torchvision's ssd300_vgg16: (in, out, kernel) of conv1_1 ... conv7, the extra blocks, and the
# channels and boxes per cell of the six feature layers.
_VGG = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
        (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))
_CONV6_7 = ((512, 1024, 3), (1024, 1024, 1))
_EXTRA = ((1024, 256, 1), (256, 512, 3), (512, 128, 1), (128, 256, 3), (256, 128, 1),
          (128, 256, 3), (256, 128, 1), (128, 256, 3))
FEATURE_CHANNELS = (512, 1024, 512, 256, 256, 256)
BOXES_PER_CELL = (4, 6, 6, 6, 4, 4)


def state_dict_shapes(num_classes=NUM_CLASSES):
    """State dict key -> shape of torchvision's ssd300_vgg16 with `num_classes`."""
    keys = torchvision_ssd.layer_keys()
    convs = [(i, o, 3) for i, o in _VGG] + list(_CONV6_7) + list(_EXTRA)
    names = vgg_layers.BACKBONE + vgg_layers.extra_layers(6)
    shapes = {}
    for name, (inputs, outputs, kernel) in zip(names, convs):
        shapes[keys[name] + '.weight'] = (outputs, inputs, kernel, kernel)
        shapes[keys[name] + '.bias'] = (outputs,)
    for (_, loc, cls), channels, boxes in zip(vgg_layers.head_layers(6), FEATURE_CHANNELS,
                                              BOXES_PER_CELL):
        for name, width in ((loc, boxes * 4), (cls, boxes * num_classes)):
            shapes[keys[name] + '.weight'] = (width, channels, 3, 3)
            shapes[keys[name] + '.bias'] = (width,)
    shapes[torchvision_ssd.SCALE_KEY] = (512,)
    return shapes


def seeded_state_dict(seed=SEED, num_classes=NUM_CLASSES):
    """float32 arrays under torchvision's keys, each drawn from its own seed (seed, key)."""
    heads = {'regression_head': LOC_GAIN, 'classification_head': CLS_GAIN}
    values = {}
    for key, shape in sorted(state_dict_shapes(num_classes).items()):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode('utf-8'))])
        if key == torchvision_ssd.SCALE_KEY:
            values[key] = (20.0 * (1.0 + 0.1 * rng.standard_normal(shape))).astype(np.float32)
            continue
        head = next((gain for name, gain in heads.items() if name in key), None)
        if key.endswith('.bias'):
            values[key] = (0.1 * (head or 1.0) * rng.standard_normal(shape)).astype(np.float32)
            continue
        fan_in = int(np.prod(shape[1:]))
        std = (head / np.sqrt(fan_in)) if head else np.sqrt(2.0 / fan_in)
        if key == 'backbone.features.0.weight':
            std *= INPUT_GAIN
        values[key] = (std * rng.standard_normal(shape)).astype(np.float32)
    return values


def photo_path():
    """matplotlib's sample photo (a dependency of the project and of the reference script)."""
    from matplotlib import cbook  # pylint: disable=import-outside-toplevel
    return str(cbook.get_sample_data(PHOTO, asfileobj=False))


def crops():
    """The reference images: list of uint8 RGB arrays (decoded with OpenCV), one per CROPS."""
    image = np.ascontiguousarray(cv2.imread(photo_path(), cv2.IMREAD_COLOR)[:, :, ::-1])
    return [image if crop is None else
            np.ascontiguousarray(image[crop[0]:crop[0] + CROP_SIZE, crop[1]:crop[1] + CROP_SIZE])
            for crop in CROPS]


def digest(array):
    """sha256 of an array's bytes (the fixture states the inputs it was made from)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def load_fixture():
    """The stored torchvision detections (make_torchvision_reference.py wrote them)."""
    with open(FIXTURE, encoding='utf-8') as f:
        return json.load(f)


def torch_available():
    """Whether torch and torchvision are installed (the live comparisons run then)."""
    return all(importlib.util.find_spec(name) is not None for name in ('torch', 'torchvision'))


def run_reference_script(folder, timeout=900):
    """Runs make_torchvision_reference.py now, in a process of its own, into `folder`.

    Returns:
        (detections dict as the fixture's, block outputs dict, path of the seeded .pth).
    """
    paths = {name: os.path.join(folder, name) for name in ('detections.json', 'blocks.npz',
                                                            'seeded.pth')}
    subprocess.run([sys.executable, '-m', 'tests.importers.make_torchvision_reference',
                    '--output', paths['detections.json'], '--blocks', paths['blocks.npz'],
                    '--state_dict', paths['seeded.pth']],
                   cwd=REPO, check=True, timeout=timeout, capture_output=True)
    with open(paths['detections.json'], encoding='utf-8') as f:
        detections = json.load(f)
    with np.load(paths['blocks.npz']) as blocks:
        return detections, dict(blocks), paths['seeded.pth']
