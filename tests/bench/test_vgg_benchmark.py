"""The pieces of the VGG benchmark (bench/train.py --vgg, bench/vgg_classifier.py) that run fast."""
import subprocess
import sys
import time

import numpy as np
import pytest

from bench import train, vgg_classifier


def test_crops_of_the_shapes_classifier():
    crops, labels = vgg_classifier.make_crops(6, 32, seed=0)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (32, 32, 3)
    assert len(crops) == len(labels)
    assert set(labels.tolist()) <= set(range(6)) and 0 in labels
    again, again_labels = vgg_classifier.make_crops(6, 32, seed=0)
    np.testing.assert_array_equal(crops, again)
    np.testing.assert_array_equal(labels, again_labels)


def test_last_progress_reads_the_final_step_and_losses(tmp_path):
    log = tmp_path / 'train.log'
    log.write_text(
        '2026 INFO step 5/9: loss 14.1925 (cls_neg 5.6370 cls_pos 3.7908 loc 2.9974 '
        'regularization 1.7674), lr 0.001, 0.06 images/s\n'
        '2026 INFO step 10: loss 14.0320 (cls_neg 5.3909 cls_pos 4.2762 loc 2.5975 '
        'regularization 1.7674), lr 0.001, 0.05 images/s\n'
        '2026 INFO Training finished at step 12; checkpoints in /x\n')
    step, total, parts = train.last_progress(str(log))
    assert (step, total) == (12, 14.032)
    assert parts == {'cls_neg': 5.3909, 'cls_pos': 4.2762, 'loc': 2.5975,
                     'regularization': 1.7674}
    (tmp_path / 'empty.log').write_text('no progress\n')
    assert train.last_progress(str(tmp_path / 'empty.log')) is None


def test_the_fine_tuned_run_uses_the_documented_flags():
    runs = {name: (model, flags) for name, model, flags in train.VGG_RUNS}
    model, flags = runs['fine-tuned']
    assert model == 'ssd_300_vgg'
    assert {'--checkpoint_path={checkpoint}', '--checkpoint_model_scope=vgg_16',
            '--ignore_missing_vars'} <= set(flags)
    # Fine-tuned and from scratch differ only by the checkpoint.
    assert [f for f in flags if 'checkpoint' not in f and 'missing' not in f] == runs['scratch'][1]


def test_the_classifier_budget_is_steps_or_seconds(tmp_path):
    for secs, steps in ((None, None), (60, 100)):
        with pytest.raises(ValueError, match='exactly one of train_secs and train_steps'):
            vgg_classifier.train_classifier(str(tmp_path), secs, train_steps=steps)


def test_runs_without_the_checkpoint_are_not_evaluated(tmp_path):
    for name, _, _ in train.VGG_RUNS:
        (tmp_path / 'vgg' / name / 'train').mkdir(parents=True)
    (tmp_path / 'vgg' / 'scratch' / 'train' / 'model.ckpt-20.index').write_text('')
    assert train.vgg_evaluate(str(tmp_path / 'records'), str(tmp_path), 1) == {}
    assert train.vgg_evaluate(str(tmp_path / 'records'), str(tmp_path), 1, step=40) == {}


def test_vgg_results_table(capsys):
    results = {'scratch': {'exit': 0, 'seconds': 100.0, 'cpu_seconds': 90.0,
                           'progress': (40, 12.5, {'cls_pos': 3.0, 'cls_neg': 2.0, 'loc': 1.5})}}
    metrics = {'scratch': {'checkpoint': '/x/model.ckpt-40', 'num_images': 104,
                           'mAP_voc07': 0.25, 'mAP_voc12': 0.26,
                           'coco': {'AP': 0.1, 'AP50': 0.3}}}
    train.print_vgg_results(results, metrics)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [name for name, _, _ in train.VGG_RUNS]
    scratch = lines[[name for name, _, _ in train.VGG_RUNS].index('scratch')]
    assert '40 steps, last loss 12.50 (cls_pos 3.00 cls_neg 2.00 loc 1.50)' in scratch
    assert '90 s CPU' in scratch
    assert 'model.ckpt-40 on 104 test images: mAP VOC07 0.2500 VOC12 0.2600' in scratch
    assert 'COCO AP 0.1000 AP50 0.3000' in scratch


def test_latest_step_reads_the_checkpoint_state(tmp_path):
    assert train.latest_step(str(tmp_path)) == 0
    (tmp_path / 'checkpoint').write_text(
        'model_checkpoint_path: "/x/train/model.ckpt-140"\n'
        'all_model_checkpoint_paths: "/x/train/model.ckpt-120"\n'
        'all_model_checkpoint_paths: "/x/train/model.ckpt-140"\n')
    assert train.latest_step(str(tmp_path)) == 140


def test_wait_all_reports_each_child_when_it_ends():
    start = time.time()
    processes = {'slow': subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(5)']),
                 'fast': subprocess.Popen([sys.executable, '-c', 'import sys; sys.exit(3)'])}
    ended = train._wait_all(processes, start)  # pylint: disable=protected-access
    assert list(ended) == ['fast', 'slow']
    assert ended['fast'][0] == 3 and ended['slow'][0] == 0
    assert ended['fast'][1] < ended['slow'][1]
    assert all(cpu >= 0 for _, _, cpu in ended.values())
