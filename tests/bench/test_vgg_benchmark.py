"""The pieces of the VGG benchmark (bench/train.py --vgg, bench/vgg_classifier.py) that run fast."""
import numpy as np

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
