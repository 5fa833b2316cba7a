"""Fine-tuning on new classes: from a detector (class heads left out) against from its backbone
only, on the shapes set.

    python -m bench.finetune [--network ssd_300_mobilenet_v2 | ssd_300_vgg_ssdtf]
        [--work_dir /tmp/ssd_bench_finetune] [--source_steps N] [--steps N] [--save_steps N]
        [--eval_batches 13] [--vgg_checkpoint vgg_16.ckpt]

1. Data: one shapes set (VOC layout), converted twice: the source task keeps circle, square and
   triangle, the target task star and cross (the other shapes are unlabelled background in each).
2. The source detector, trained on the source task for --source_steps:
   - ssd_300_mobilenet_v2 (default; what this 2-core machine trains in minutes): from scratch
     with the accuracy recipe of bench/train.py; the target runs start from its train dir;
   - ssd_300_vgg_ssdtf (the import path end to end; about 40 CPU s per step of batch 8 on an AVX2
     core, so hours here): from a vgg_16.ckpt stand-in (bench/vgg_classifier.py, or
     --vgg_checkpoint), then written as an SSD-Tensorflow checkpoint (its variable names) and
     imported like a downloaded one with `import_weights.py --source=ssd_tensorflow`; the target
     runs start from the imported train dir.
3. Two target runs started together with one intra-op and one inter-op thread each, the same
   recipe and --steps (a budget in steps, not time, so the shared machine cannot make them
   unequal), a checkpoint every --save_steps:
   - detector: everything restored but the class heads (the recipe: --checkpoint_exclude_scopes
     = the `*_box/cls` scopes, which import_weights.py prints);
   - backbone: the backbone restored, the extra feature layers and all heads fresh (what an
     ImageNet backbone gives).
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

from bench import machine, record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOBILENET, VGG = 'ssd_300_mobilenet_v2', 'ssd_300_vgg_ssdtf'
SOURCE_CLASSES = ('circle', 'square', 'triangle')
TARGET_CLASSES = ('star', 'cross')
BATCH_SIZE = 8
COMMON = ['--batch_size=%d' % BATCH_SIZE, '--seed=1', '--log_every_n_steps=10',
          '--save_summaries_secs=100000']
# Per network: the source detector's recipe (MobileNetV2: bench/train.py's accuracy recipe from
# scratch; VGG: its short VGG recipe, Adam 1e-4, from the vgg_16 stand-in), the target runs'
# (a constant rate after 10 warm-up steps, so every kept checkpoint is a fair intermediate
# result), default steps (source, target, checkpoint period) and the feature layers the
# backbone does not have.
RECIPES = {
    MOBILENET: dict(
        source=['--optimizer=adam', '--learning_rate=0.0015', '--learning_rate_decay_type=cosine',
                '--warmup_steps=100', '--end_learning_rate=0.00001', '--weight_decay=0.00004'],
        target=['--optimizer=adam', '--learning_rate=0.0005', '--warmup_steps=10',
                '--weight_decay=0.00004'],
        steps=(500, 200, 25), extra_layers=('extra_1', 'extra_2', 'extra_3')),
    VGG: dict(
        source=['--optimizer=adam', '--learning_rate=0.0001', '--warmup_steps=10',
                '--weight_decay=0.0005'],
        target=['--optimizer=adam', '--learning_rate=0.0001', '--warmup_steps=10',
                '--weight_decay=0.0005'],
        steps=(200, 100, 25), extra_layers=('conv8', 'conv9', 'conv10', 'conv11')),
}
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
    """Writes the newest checkpoint of `train_dir` (the VGG network) under SSD-Tensorflow's
    variable names."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from importers import ssd_tensorflow  # pylint: disable=import-outside-toplevel
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
    names = ssd_tensorflow.variable_names('ssd_300_vgg', 6)
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(reader.get_tensor('%s/%s' % (VGG, ours)),
                                           name=theirs) for ours, theirs in names.items()]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(variables))
            tf.compat.v1.train.Saver(variables).save(session, prefix)
    return prefix


def exclude_scopes(network, run):
    """--checkpoint_exclude_scopes of a target run."""
    from importers import import_lib  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    if run == 'detector':
        return import_lib.class_head_scopes(network)
    fresh = list(RECIPES[network]['extra_layers'])
    fresh += [layer + '_box' for layer in nets_factory.get_network(network).params.feat_layers]
    return ','.join('%s/%s' % (network, name) for name in fresh)


def train_target(network, work_dir, records, start_from, steps, save_steps):
    """Both target runs side by side from the train dir `start_from`; {run: (exit code,
    wall s)}."""
    processes, start = {}, time.time()
    for run in RUNS:
        run_dir = os.path.join(work_dir, 'target', run)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        args = ['--dataset_dir=%s' % records, '--train_dir=%s' % os.path.join(run_dir, 'train'),
                '--model_name=%s' % network, '--checkpoint_path=%s' % start_from,
                '--checkpoint_exclude_scopes=%s' % exclude_scopes(network, run),
                '--max_number_of_steps=%d' % steps, '--save_interval_steps=%d' % save_steps,
                '--max_checkpoints_to_keep=%d' % (steps // save_steps + 1)
                ] + RECIPES[network]['target'] + COMMON
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


def source_detector(args, records):
    """Trains the source detector; returns the train dir the target runs start from."""
    recipe = RECIPES[args.network]
    source_dir = os.path.join(args.work_dir, args.network, 'source')
    source_train = os.path.join(source_dir, 'train')
    os.makedirs(source_dir, exist_ok=True)
    flags = ['--dataset_dir=%s' % records['source'], '--train_dir=%s' % source_train,
             '--model_name=%s' % args.network, '--max_number_of_steps=%d' % args.source_steps,
             '--save_interval_steps=%d' % args.source_steps] + recipe['source'] + COMMON
    if args.network == VGG:
        flags += ['--checkpoint_path=%s' % (args.vgg_checkpoint or stand_in_checkpoint(
            args.work_dir, args.vgg_classifier_steps)), '--checkpoint_model_scope=vgg_16',
                  '--ignore_missing_vars']
    start = time.time()
    _run('train_ssd_network.py', flags, os.path.join(source_dir, 'train.log'))
    print('source detector %s: %d steps in %.0f s; %s on the source test images' % (
        args.network, args.source_steps, time.time() - start,
        _describe(evaluate(source_train, records['source'], os.path.join(source_dir, 'eval'),
                           args.eval_batches))))
    if args.network != VGG:
        return source_train
    published = publish_as_ssd_tensorflow(
        source_train, os.path.join(source_dir, 'published', 'ssd_300_vgg.ckpt'))
    imported = os.path.join(args.work_dir, args.network, 'imported')
    shutil.rmtree(imported, ignore_errors=True)
    _run('import_weights.py',
         ['--source=ssd_tensorflow', '--input=%s' % published, '--train_dir=%s' % imported,
          '--labels_file=%s' % os.path.join(records['source'], 'labels.txt')],
         os.path.join(source_dir, 'import.log'))
    return imported


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--network', default=MOBILENET, choices=sorted(RECIPES),
                        help='network of the source detector and the runs (default %(default)s)')
    parser.add_argument('--work_dir', default='/tmp/ssd_bench_finetune', help='scratch folder')
    parser.add_argument('--num_train', type=int, default=2000, help='trainval images')
    parser.add_argument('--num_test', type=int, default=300, help='test images')
    parser.add_argument('--vgg_checkpoint', default=None,
                        help='VGG: a vgg_16.ckpt instead of the stand-in made here')
    parser.add_argument('--vgg_classifier_steps', type=int, default=300,
                        help='VGG: training steps of the vgg_16 stand-in')
    parser.add_argument('--source_steps', type=int, default=None,
                        help='training steps (batch 8) of the source detector (MobileNetV2 500, '
                        'VGG 200)')
    parser.add_argument('--steps', type=int, default=None,
                        help='steps (batch 8) of each run (MobileNetV2 200, VGG 100)')
    parser.add_argument('--save_steps', type=int, default=None,
                        help='checkpoint period of the runs in steps (25)')
    parser.add_argument('--eval_batches', type=int, default=13,
                        help='target test batches of 8 images per evaluation')
    record.add_flag(parser)
    args = parser.parse_args()
    defaults = dict(zip(('source_steps', 'steps', 'save_steps'), RECIPES[args.network]['steps']))
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ('num_train', 'num_test', 'vgg_classifier_steps', 'source_steps', 'steps',
                 'save_steps', 'eval_batches'):
        if getattr(args, name) < 1:
            parser.error('--%s must be >= 1' % name)
    print('machine: %s' % machine.describe())
    records = make_data(args.work_dir, args.num_train, args.num_test, seed=11)
    start_from = source_detector(args, records)
    print('target runs side by side (one thread each), %d steps; machine: %s'
          % (args.steps, machine.describe()))
    for run, (code, seconds) in train_target(args.network, os.path.join(args.work_dir,
                                                                       args.network),
                                             records['target'], start_from, args.steps,
                                             args.save_steps).items():
        print('  %-9s exit %d, %.0f s' % (run, code, seconds))
    for run in RUNS:
        run_dir = os.path.join(args.work_dir, args.network, 'target', run)
        for step in kept_steps(os.path.join(run_dir, 'train')):
            metrics = evaluate(os.path.join(run_dir, 'train', 'model.ckpt-%d' % step),
                               records['target'], os.path.join(run_dir, 'eval-%d' % step),
                               args.eval_batches)
            print('%-9s step %4d: %s (%s)' % (run, step, _describe(metrics), ', '.join(
                '%s %.3f' % (name, values['ap_voc07'] or 0.0)
                for name, values in sorted(metrics['per_class'].items()))))
        record.figure('finetune_%s' % run, round(metrics['mAP_voc07'], 3), 'VOC07 mAP',
                      'Fine-tuned on new classes from the %s, %d steps' % (
                          'detector' if run == 'detector' else 'backbone only', step))
    print('machine at the end: %s' % machine.describe())


if __name__ == '__main__':
    sys.exit(record.run(main, 'finetune'))
