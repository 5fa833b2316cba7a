"""bench/precision.py: reading COCO results and matching detections across precisions."""
import json
import os

import numpy as np
import pytest

from bench import precision


def test_detections_by_image_keeps_confident_ones_as_yxyx(tmp_path):
    path = tmp_path / 'detections.json'
    path.write_text(json.dumps([
        {'image_id': 1, 'category_id': 2, 'bbox': [10, 20, 30, 40], 'score': 0.9},
        {'image_id': 1, 'category_id': 3, 'bbox': [0, 0, 5, 5], 'score': 0.2},
        {'image_id': 2, 'category_id': 1, 'bbox': [1, 2, 3, 4], 'score': 0.5}]))
    found = precision.detections_by_image(str(path), 0.5)
    np.testing.assert_array_equal(found[1][0], [[20, 10, 60, 40]])
    np.testing.assert_array_equal(found[1][1], [2])
    assert sorted(found) == [1, 2]


def test_matched_share_needs_the_class_and_the_iou_and_matches_once():
    box = [0.0, 0.0, 10.0, 10.0]
    shifted = [0.0, 0.0, 10.0, 10.5]      # IoU 0.95 with box
    far = [0.0, 0.0, 10.0, 13.0]          # IoU 0.77
    reference = {1: (np.array([box, box]), np.array([1, 1])),
                 2: (np.array([box]), np.array([1])),
                 3: (np.array([box]), np.array([2]))}
    other = {1: (np.array([shifted]), np.array([1])),   # one match for two boxes
             2: (np.array([far]), np.array([1])),       # IoU too low
             3: (np.array([box]), np.array([1]))}       # other class
    assert precision.matched_share(reference, other, 0.9) == (1, 4)
    assert precision.matched_share(reference, other, 0.7) == (2, 4)
    assert precision.matched_share(other, other, 0.9) == (3, 3)


def test_progress_lines_and_quarter_means():
    log = ('I step 1/8: loss 20.5000 (cls_neg 9.0 loc 2.0), lr 0.0015, 1.50 images/s, ETA 1m\n'
           'noise\nI step 4/8: loss 10.0000 (cls_neg 5.0), lr 0.001, 12.25 images/s\n'
           'I step 8: loss nan (loc nan), lr 1e-05, 11.00 images/s (cluster 20.00 images/s)\n')
    progress = precision.progress_lines(log)
    assert progress[:2] == [(1, 20.5, 1.5), (4, 10.0, 12.25)]
    assert progress[2][0] == 8 and np.isnan(progress[2][1]) and progress[2][2] == 11.0
    means = precision.quarter_means(progress[:2], 8)
    assert means[0] == 20.5 and means[1] == 10.0 and np.isnan(means[2])


def test_demo_recipe_is_the_makefiles():
    with open(os.path.join(precision.ROOT, 'Makefile'), encoding='utf-8') as makefile:
        text = makefile.read()
    flags = set(text.replace('\\\n', ' ').split())
    assert set(precision.RECIPES['demo']) <= flags
    assert '--seed=$(DEMO_SEED)' in flags and 'DEMO_SEED ?= 0' in text


def test_flags_of_both_comparisons():
    args = precision.parse_args(['train', '--dataset_dir=r', '--work_dir=w'])
    assert (args.recipe, args.steps, args.precision) == ('demo', 600, 'mixed_bfloat16')
    args = precision.parse_args(['forward', '--dataset_dir=r', '--checkpoint_path=c'])
    assert (args.iou_threshold, args.score_threshold) == (0.9, 0.5)
    with pytest.raises(SystemExit):
        precision.parse_args(['train', '--dataset_dir=r', '--work_dir=w', '--steps=0'])
    args = precision.parse_args(['train', '--dataset_dir=r', '--work_dir=w', '--seeds=2,0,1',
                                 '--recipe=vgg_finetune', '--checkpoint=vgg_16.ckpt'])
    assert args.seeds == [2, 0, 1]
    assert '--checkpoint_path=vgg_16.ckpt' in precision.recipe_flags(args)
    for wrong in (['--seeds=1,1'], ['--seeds=a'], ['--recipe=vgg_finetune'],
                  ['--checkpoint=vgg_16.ckpt']):
        with pytest.raises(SystemExit):
            precision.parse_args(['train', '--dataset_dir=r', '--work_dir=w'] + wrong)


def test_train_comparison_runs_both_precisions_with_the_same_recipe(tmp_path, monkeypatch,
                                                                    capsys):
    calls = []

    def fake_script(name, flags, log_path):
        calls.append((name, flags))
        values = dict(flag[2:].split('=', 1) for flag in flags)
        if name == 'train_ssd_network.py':
            loss = 4.0 if values['precision'] == 'float32' else 4.2
            os.makedirs(values['train_dir'])
            with open(log_path, 'w', encoding='utf-8') as log:
                log.write('step 2/4: loss %.4f (loc 1.0), lr 0.001, 3.00 images/s\n'
                          'step 4/4: loss 2.0000 (loc 0.5), lr 0.001, 5.00 images/s\n' % loss)
            return 10.0
        os.makedirs(values['eval_dir'])
        with open(os.path.join(values['eval_dir'], 'metrics.json'), 'w',
                  encoding='utf-8') as metrics:
            json.dump({'mAP_voc07': 0.5, 'mAP_voc12': 0.6}, metrics)
        return 1.0

    monkeypatch.setattr(precision, 'run_script', fake_script)
    precision.main(['train', '--dataset_dir=records', '--work_dir=%s' % tmp_path,
                    '--steps=4', '--log_every_n_steps=2'])
    trains = [flags for name, flags in calls if name == 'train_ssd_network.py']
    evals = [flags for name, flags in calls if name == 'eval_ssd_network.py']
    assert [flags[-len(precision.SAME_BATCHES) - 1:] for flags in trains] == [
        ['--seed=0'] + precision.SAME_BATCHES] * 2
    assert [flag.replace('float32', 'mixed_bfloat16') for flag in trains[0]] == trains[1]
    assert ['--precision=float32' in f for f in trains] == [True, False]
    assert '--precision=mixed_bfloat16' in trains[1]
    assert len(evals) == 2 and not [f for f in evals if '--precision' in ' '.join(f)]
    out = capsys.readouterr().out
    assert 'float32         4 steps in 10 s, median 5.00 images/s; mAP VOC07 0.5000' in out
    assert 'loss per quarter nan 4.200 nan 2.000' in out
    assert ('mAP_voc07 over 1 seed(s): float32 mean 0.5000; mixed_bfloat16 mean 0.5000; '
            'difference (mixed_bfloat16 - float32) +0.0000, mean +0.0000\n') in out
    calls.clear()
    precision.main(['train', '--dataset_dir=records', '--work_dir=%s' % (tmp_path / 'seeds'),
                    '--steps=4', '--seeds=3,4'])
    assert [flags[-3] for name, flags in calls if name == 'train_ssd_network.py'] == [
        '--seed=3', '--seed=3', '--seed=4', '--seed=4']
    out = capsys.readouterr().out
    assert out.count('seed 3 ') == 2 and out.count('seed 4 ') == 2
    assert 'over 2 seed(s): float32 mean 0.5000 (sd 0.0000)' in out
    assert 'mean +0.0000 +- 0.0000 (standard error)' in out
    with pytest.raises(SystemExit, match='exists'):
        precision.main(['train', '--dataset_dir=records', '--work_dir=%s' % tmp_path])
