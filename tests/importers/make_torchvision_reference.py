"""Writes the stored torchvision detections of the equivalence test (tests/importers/fixtures/
torchvision_ssd300_detections.json): torchvision's own `ssd300_vgg16` (eval mode, score threshold
0, its own transform and post-processing) with the seeded weights on the reference photo crops.

Run from the repository root in an environment with torch (not the project's):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy==2.1.3 \\
        opencv-python-headless==4.12.0.88 matplotlib==3.10.8
    /tmp/torchenv/bin/python -m tests.importers.make_torchvision_reference

The weights are regenerated from the seed (tests/importers/torchvision_reference.py), never
stored. tests/importers/test_torchvision_equivalence.py compares the project's import with this
file always and, when torch is installed, runs this script again (a process of its own: torch
and TensorFlow crash when torchvision is imported after TensorFlow) with --output, --blocks and
--state_dict for a live comparison.
"""
import argparse
import json
import os
import platform
import re
import sys

import numpy as np
import torch
import torchvision

from tests.importers import torchvision_reference as reference


def build_model(state_dict, num_classes=reference.NUM_CLASSES):
    """torchvision's ssd300_vgg16 with `state_dict` (numpy arrays), eval mode, threshold 0.

    Raises:
        ValueError: the seeded layout differs from torchvision's (names or shapes).
    """
    model = torchvision.models.detection.ssd300_vgg16(
        weights=None, weights_backbone=None, num_classes=num_classes, score_thresh=0.0)
    own = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    seeded = {key: tuple(value.shape) for key, value in state_dict.items()}
    if own != seeded:
        differ = sorted(set(own.items()) ^ set(seeded.items()))
        raise ValueError('the seeded state dict is not torchvision\'s layout: %s' % differ[:4])
    model.load_state_dict({key: torch.from_numpy(value) for key, value in state_dict.items()})
    return model.eval()


def detections(model, image, top=reference.TOP_DETECTIONS):
    """torchvision's top detections of one uint8 RGB image.

    Returns:
        list of [class, score, ymin, xmin, ymax, xmax] (box normalised), best first.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        found = model([tensor])[0]
    height, width = image.shape[:2]
    boxes = found['boxes'][:top].numpy() / np.array([width, height, width, height], np.float32)
    return [[int(label), round(float(score), 6)] + [round(float(v), 6) for v in box]
            for label, score, box in zip(found['labels'][:top].tolist(),
                                         found['scores'][:top].tolist(), boxes[:, [1, 0, 3, 2]])]


# Block outputs of the layer-by-layer review: name -> torchvision backbone module path.
BLOCKS = {'conv1_2': 'features.3', 'conv2_2': 'features.8', 'conv3_3': 'features.15',
          'conv4_3': 'features.22', 'conv5_3': 'extra.0.6', 'conv6': 'extra.0.7.2',
          'conv7': 'extra.0.7.4', 'conv8': 'extra.1', 'conv9': 'extra.2', 'conv10': 'extra.3',
          'conv11': 'extra.4'}


def block_outputs(model, image):
    """Every block output, the L2-normalised conv4_3 and the raw heads on one image (NHWC).

    Returns:
        dict name -> float32 array; 'logits' [1, A, C] and 'locs' [1, A, 4] in the heads' own
        order (dx, dy, dw, dh), 'anchors' [A, 4] xyxy pixels.
    """
    found = {}
    for name, path in BLOCKS.items():
        model.backbone.get_submodule(path).register_forward_hook(
            lambda _m, _i, output, name=name: found.__setitem__(
                name, output.detach().permute(0, 2, 3, 1).numpy()))
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        images, _ = model.transform([tensor])
        features = list(model.backbone(images.tensors).values())
        head = model.head(features)
        anchors = model.anchor_generator(images, features)[0]
    found['feature/conv4_3'] = features[0].permute(0, 2, 3, 1).numpy()
    found['logits'] = head['cls_logits'].numpy()
    found['locs'] = head['bbox_regression'].numpy()
    found['anchors'] = anchors.numpy()
    found['input'] = images.tensors.permute(0, 2, 3, 1).numpy()
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output', default=reference.FIXTURE, help='the detections JSON')
    parser.add_argument('--blocks', default=None,
                        help='also write the block outputs on the first crop to this .npz')
    parser.add_argument('--state_dict', default=None,
                        help='also save the seeded state dict to this .pth')
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    state_dict = reference.seeded_state_dict()
    model = build_model(state_dict)
    crops = reference.crops()
    fixture = {
        'made_by': 'python -m tests.importers.make_torchvision_reference',
        'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'numpy': np.__version__, 'python': platform.python_version(),
        'seed': reference.SEED, 'num_classes': reference.NUM_CLASSES,
        'gains': {'input': reference.INPUT_GAIN, 'cls': reference.CLS_GAIN,
                  'loc': reference.LOC_GAIN},
        'crops': [{'window': None if window is None else [window[0], window[1],
                                                          reference.CROP_SIZE,
                                                          reference.CROP_SIZE],
                   'shape': list(crop.shape), 'sha256': reference.digest(crop),
                   'detections': detections(model, crop)}
                  for window, crop in zip(reference.CROPS, crops)],
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    text = json.dumps(fixture, indent=1)
    # One detection a line.
    text = re.sub(r'\[\s+([-\d.,e\s]+?)\s+\]', lambda m: '[%s]' % re.sub(r'\s+', ' ', m.group(1)),
                  text)
    with open(args.output, 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    if args.blocks:
        np.savez(args.blocks, **block_outputs(model, crops[0]))
    if args.state_dict:
        torch.save({key: torch.from_numpy(value) for key, value in state_dict.items()},
                   args.state_dict)
    print('Wrote %s (%d images, top %d detections each)' % (
        args.output, len(crops), reference.TOP_DETECTIONS))
    return 0


if __name__ == '__main__':
    sys.exit(main())
