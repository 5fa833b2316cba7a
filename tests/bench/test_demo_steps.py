"""bench.demo_steps: the figures of a checkpoint from a detections file, and the runs it makes."""
import json
import os

import numpy as np
import pytest

from bench import demo_steps
from bench import precision as bench_precision


def _write_detections(path, scores_by_image):
    detections = [{'image_id': image, 'category_id': 1, 'bbox': [0, 0, 1, 1], 'score': score}
                  for image, scores in scores_by_image.items() for score in scores]
    with open(path, 'w', encoding='utf-8') as out:
        json.dump(detections, out)


def test_highest_scores_count_images_without_detections_as_zero(tmp_path):
    _write_detections(tmp_path / 'd.json', {1: [0.2, 0.6], 2: [0.4], 3: [0.55, 0.52, 0.1]})
    tops, by_image = demo_steps.highest_scores(str(tmp_path / 'd.json'), 5)
    np.testing.assert_allclose(sorted(tops), [0.0, 0.0, 0.4, 0.55, 0.6])
    figures = demo_steps.summarize(tops, by_image, [0.5, 0.3])
    assert figures['shares'] == {0.5: pytest.approx(0.4), 0.3: pytest.approx(0.6)}
    assert figures['median_top'] == pytest.approx(0.4)
    assert figures['per_image'] == pytest.approx(3 / 5)  # 0.6, 0.55, 0.52


def test_one_training_per_schedule_and_an_evaluation_per_checkpoint(tmp_path, monkeypatch,
                                                                    capsys):
    calls = []

    def fake_script(name, flags, log_path):
        calls.append((name, flags))
        values = dict(flag[2:].split('=', 1) for flag in flags)
        if name == 'eval_ssd_network.py':
            with open(os.path.join(values['eval_dir'], 'metrics.json'), 'w',
                      encoding='utf-8') as metrics:
                json.dump({'mAP_voc07': 0.25, 'num_images': 2}, metrics)
            _write_detections(values['detections_file'], {1: [0.7]})
        return 12.0

    monkeypatch.setattr(bench_precision, 'run_script', fake_script)
    demo_steps.main(['--dataset_dir=records', '--work_dir=%s' % tmp_path, '--schedules=300',
                     '--eval_steps=100,200,400'])
    [(name, train_flags)] = [call for call in calls if call[0] == 'train_ssd_network.py']
    assert '--max_number_of_steps=300' in train_flags and '--save_interval_steps=100' in \
        train_flags
    assert set(bench_precision.RECIPES['demo']) <= set(train_flags)
    evaluated = [dict(f[2:].split('=', 1) for f in flags)['checkpoint_path']
                 for name, flags in calls if name == 'eval_ssd_network.py']
    assert [os.path.basename(path) for path in evaluated] == [
        'model.ckpt-100', 'model.ckpt-200', 'model.ckpt-300']
    out = capsys.readouterr().out
    assert 'schedule 300: trained in 12 s' in out
    assert ('schedule 300, step  200: VOC07 mAP 0.250; 50% of the images have a box >= 0.50, '
            '50% of the images have a box >= 0.30; median highest score 0.35') in out
