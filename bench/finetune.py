"""Fine-tuning on new classes: from an imported detector (class heads left out) against from its
backbone only, on the shapes set.

    python -m bench.finetune [--work_dir /tmp/ssd_bench_finetune] [--vgg_checkpoint vgg_16.ckpt]
        [--source_steps 200] [--steps 100] [--save_steps 25] [--eval_batches 13]

No published detector can be downloaded here, so one is made and published the way
SSD-Tensorflow publishes its checkpoints, then imported like a downloaded one:
1. Data: one shapes set (VOC layout), converted twice: the source task keeps circle, square and
   triangle, the target task star and cross (the other shapes are unlabelled background in each).
2. The source detector: NETWORK trained on the source task for --source_steps from a vgg_16.ckpt
   stand-in (bench/vgg_classifier.py, or --vgg_checkpoint), written as an SSD-Tensorflow
   checkpoint (its variable names) and imported with
   `import_weights.py --source=ssd_tensorflow --labels_file=...`.
3. Two target runs from the imported train dir, started together with one intra-op and one
   inter-op thread each, the same recipe and --steps (a budget in steps, not time, so the shared
   machine cannot make them unequal), a checkpoint every --save_steps:
   - detector: everything restored but the class heads (the recipe: --checkpoint_exclude_scopes
     = the `*_box/cls` scopes that import_weights.py prints);
   - backbone: conv1 ... conv7 and the conv4_3 scale restored, the extra layers and all heads
     fresh (what an ImageNet backbone gives).
4. Each kept checkpoint evaluated on the first --eval_batches batches of 8 target test images.
Prints the machine, the source detector's mAP and, per run and step, VOC07 mAP and COCO AP.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from bench import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORK = 'ssd_300_vgg_ssdtf'
SOURCE_CLASSES = ('circle', 'square', 'triangle')
TARGET_CLASSES = ('star', 'cross')
BATCH_SIZE = 8
# The short VGG recipe of bench/train.py (Adam 1e-4, 10 warm-up steps, the paper's weight decay).
RECIPE = ['--optimizer=adam', '--learning_rate=0.0001', '--warmup_steps=10',
          '--weight_decay=0.0005', '--batch_size=%d' % BATCH_SIZE, '--seed=1',
          '--log_every_n_steps=5', '--save_summaries_secs=100000']
RUNS = ('detector', 'backbone')


def _env(threads=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    return env


def _run(script, args, log_path, threads=None):
    with open(log_path, 'w', encoding='utf-8') as log:
        code = subprocess.call([sys.executable, os.path.join(ROOT, script)] + args, stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT, env=_env(threads))
    if code:
        sys.exit('%s failed (exit %d); see %s' % (script, code, log_path))


def make_data(work_dir, num_train, num_test, seed):
    """The shapes images and the records of both tasks: {task: records folder}."""
    from common import labels as labels_lib  # pylint: disable=import-outside-toplevel
    from datasets import converter, make_shapes_dataset, pascalvoc  # pylint: disable=C0415

    voc_dir = os.path.join(work_dir, 'data', 'voc')
    folders = {task: os.path.join(work_dir, 'data', task) for task in ('source', 'target')}
    if all(os.path.isfile(os.path.join(f, 'shapes_test_summary.json'))
           for f in folders.values()):
        return folders
    make_shapes_dataset.make_dataset(voc_dir, num_train, num_test, seed, num_workers=2)
    for task, classes in (('source', SOURCE_CLASSES), ('target', TARGET_CLASSES)):
        labels = {0: labels_lib.BACKGROUND, **dict(enumerate(classes, 1))}
        for split in make_shapes_dataset.SPLITS:
            result = pascalvoc.read_split(voc_dir, split, labels_lib.ids_by_name(labels),
                                          skip_unknown_classes=True)
            converter.convert(result, labels, folders[task], 'shapes_%s' % split,
                              num_workers=2, seed=seed, source='shapes %s %s' % (task, split))
    return folders


def stand_in_checkpoint(work_dir, steps):
    """A vgg_16.ckpt stand-in (bench/vgg_classifier.py), made once."""
    path = os.path.join(work_dir, 'vgg_16', 'vgg_16.ckpt')
    if os.path.isfile(path):
        return path
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from bench import vgg_classifier  # pylint: disable=import-outside-toplevel
    with tf.Graph().as_default():
        return vgg_classifier.train_classifier(os.path.dirname(path),
                                               train_steps=steps)['checkpoint']


def publish_as_ssd_tensorflow(train_dir, prefix):
    """Writes the newest checkpoint of `train_dir` under SSD-Tensorflow's variable names."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from importers import ssd_tensorflow  # pylint: disable=import-outside-toplevel
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
    names = ssd_tensorflow.variable_names('ssd_300_vgg', 6)
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(reader.get_tensor('%s/%s' % (NETWORK, ours)),
                                           name=theirs) for ours, theirs in names.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(variables))
            tf.compat.v1.train.Saver(variables).save(session, prefix)
    return prefix


def exclude_scopes(run):
    """--checkpoint_exclude_scopes of a target run."""
    from importers import import_lib, vgg_layers  # pylint: disable=import-outside-toplevel
    if run == 'detector':
        return import_lib.class_head_scopes(NETWORK)
    fresh = sorted({name.split('/')[0] for name in vgg_layers.extra_layers(6)})
    fresh += [feature + '_box' for feature in vgg_layers.feature_layers(6)]
    return ','.join('%s/%s' % (NETWORK, name) for name in fresh)


def train_target(work_dir, records, imported, steps, save_steps):
    """Both target runs side by side; {run: (exit code, wall s)}."""
    processes, start = {}, time.time()
    for run in RUNS:
        run_dir = os.path.join(work_dir, 'target', run)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        args = ['--dataset_dir=%s' % records, '--train_dir=%s' % os.path.join(run_dir, 'train'),
                '--model_name=%s' % NETWORK, '--checkpoint_path=%s' % imported,
                '--checkpoint_exclude_scopes=%s' % exclude_scopes(run),
                '--max_number_of_steps=%d' % steps, '--save_interval_steps=%d' % save_steps,
                '--max_checkpoints_to_keep=%d' % (steps // save_steps + 1)] + RECIPE
        log = open(os.path.join(run_dir, 'train.log'), 'w', encoding='utf-8')
        processes[run] = (subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'train_ssd_network.py')] + args, stdout=log,
            stderr=subprocess.STDOUT, cwd=ROOT, env=_env(threads=1)), log)
    results = {}
    for run, (process, log) in processes.items():
        results[run] = (process.wait(), time.time() - start)
        log.close()
    return results


def evaluate(checkpoint, records, eval_dir, batches, threads=None):
    """metrics.json of one checkpoint on the first `batches` test batches of 8 images."""
    _run('eval_ssd_network.py',
         ['--checkpoint_path=%s' % checkpoint, '--eval_dir=%s' % eval_dir,
          '--dataset_dir=%s' % records, '--dataset_split_name=test', '--batch_size=8',
          '--max_num_batches=%d' % batches], eval_dir + '.log', threads)
    with open(os.path.join(eval_dir, 'metrics.json'), encoding='utf-8') as f:
        return json.load(f)


def kept_steps(train_dir):
    """Global steps of the checkpoints kept in a train dir, ascending."""
    return sorted(int(m.group(1)) for name in os.listdir(train_dir)
                  for m in [re.match(r'model\.ckpt-(\d+)\.index$', name)] if m)


def _describe(metrics):
    coco = metrics.get('coco') or {}
    return 'VOC07 mAP %.3f, COCO AP %.3f' % (metrics['mAP_voc07'], coco.get('AP') or 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work_dir', default='/tmp/ssd_bench_finetune', help='scratch folder')
    parser.add_argument('--num_train', type=int, default=2000, help='trainval images')
    parser.add_argument('--num_test', type=int, default=300, help='test images')
    parser.add_argument('--vgg_checkpoint', default=None,
                        help='a vgg_16.ckpt instead of the stand-in made here')
    parser.add_argument('--vgg_classifier_steps', type=int, default=300,
                        help='training steps of the vgg_16 stand-in')
    parser.add_argument('--source_steps', type=int, default=200,
                        help='training steps (batch 8) of the source detector')
    parser.add_argument('--steps', type=int, default=100, help='steps (batch 8) of each run')
    parser.add_argument('--save_steps', type=int, default=25, help='checkpoint period (steps)')
    parser.add_argument('--eval_batches', type=int, default=13,
                        help='target test batches of 8 images per evaluation')
    args = parser.parse_args()
    for name in ('num_train', 'num_test', 'vgg_classifier_steps', 'source_steps', 'steps',
                 'save_steps', 'eval_batches'):
        if getattr(args, name) < 1:
            parser.error('--%s must be >= 1' % name)
    print('machine: %s' % machine.describe())
    records = make_data(args.work_dir, args.num_train, args.num_test, seed=11)
    checkpoint = args.vgg_checkpoint or stand_in_checkpoint(args.work_dir,
                                                            args.vgg_classifier_steps)
    source_dir = os.path.join(args.work_dir, 'source')
    source_train = os.path.join(source_dir, 'train')
    os.makedirs(source_dir, exist_ok=True)
    start = time.time()
    _run('train_ssd_network.py',
         ['--dataset_dir=%s' % records['source'], '--train_dir=%s' % source_train,
          '--model_name=%s' % NETWORK, '--checkpoint_path=%s' % checkpoint,
          '--checkpoint_model_scope=vgg_16', '--ignore_missing_vars',
          '--max_number_of_steps=%d' % args.source_steps,
          '--save_interval_steps=%d' % args.source_steps] + RECIPE,
         os.path.join(source_dir, 'train.log'))
    print('source detector: %d steps in %.0f s; %s on the source test images' % (
        args.source_steps, time.time() - start,
        _describe(evaluate(source_train, records['source'], os.path.join(source_dir, 'eval'),
                           args.eval_batches))))
    published = publish_as_ssd_tensorflow(
        source_train, os.path.join(source_dir, 'published', 'ssd_300_vgg.ckpt'))
    imported = os.path.join(args.work_dir, 'imported')
    shutil.rmtree(imported, ignore_errors=True)
    _run('import_weights.py',
         ['--source=ssd_tensorflow', '--input=%s' % published, '--train_dir=%s' % imported,
          '--labels_file=%s' % os.path.join(records['source'], 'labels.txt')],
         os.path.join(args.work_dir, 'import.log'))
    print('target runs side by side (one thread each), %d steps; machine: %s'
          % (args.steps, machine.describe()))
    for run, (code, seconds) in train_target(args.work_dir, records['target'], imported,
                                             args.steps, args.save_steps).items():
        print('  %-9s exit %d, %.0f s' % (run, code, seconds))
    for run in RUNS:
        train_dir = os.path.join(args.work_dir, 'target', run, 'train')
        for step in kept_steps(train_dir):
            metrics = evaluate(os.path.join(train_dir, 'model.ckpt-%d' % step),
                               records['target'],
                               os.path.join(args.work_dir, 'target', run, 'eval-%d' % step),
                               args.eval_batches)
            print('%-9s step %4d: %s (%s)' % (run, step, _describe(metrics), ', '.join(
                '%s %.3f' % (name, values['ap_voc07'] or 0.0)
                for name, values in sorted(metrics['per_class'].items()))))
    print('machine at the end: %s' % machine.describe())


if __name__ == '__main__':
    main()
