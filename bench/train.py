"""Training benchmark: images/s of the SSD networks and the mAP reached on the shapes set.

    python -m bench.train [--work_dir DIR] [--train_secs 1800] [--skip_speed] [--skip_accuracy]
    python -m bench.train --skip_speed --skip_accuracy --vgg [--vgg_steps 200]
    python -m bench.train --skip_speed --skip_accuracy --vgg --vgg_eval_step 100

1. Speed: training images/s (forward + backward + update, the real input pipeline) of
   ssd_300_vgg at batch 8 and ssd_300_mobilenet_v2 at batch 16, after warm-up steps. With
   --precision=mixed_bfloat16 each network trains in float32 and in bfloat16 in the same run:
   two sessions of the same graph taking turns step by step, so both see the same load.
2. Accuracy: ssd_300_mobilenet_v2 trained from scratch on the synthetic shapes set
   (train_ssd_network.py, fixed seed) for at most --train_secs seconds, then evaluated
   on the test split (eval_ssd_network.py, difficult objects excluded): VOC07/VOC12 mAP.
3. VGG (--vgg): does the VGG path learn? A stand-in for slim's ImageNet vgg_16.ckpt is made
   here (bench/vgg_classifier.py: tf_slim's vgg_16 trained for --vgg_classifier_steps on
   shape crops, saved as the model zoo's); then, started together, each with one intra-op
   and one inter-op thread (TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS), for the same
   --vgg_steps (a budget in steps, not time, so that a shared machine cannot make it
   unfair): ssd_300_vgg fine-tuned from it with the documented flags, ssd_300_vgg from
   scratch with the same recipe, and the from-scratch fix (ssd_300_vgg_bn). A checkpoint is
   kept every --vgg_save_steps; each run's last one is evaluated on the first
   --vgg_eval_batches batches of 8 test images (--vgg_eval_step N: only evaluate step N of
   the runs already trained, e.g. when they were stopped early). Prints steps, CPU seconds,
   last losses and mAP.
Prints the machine (CPU, cores, load, TensorFlow version) and the figures.
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
from common import precision as precision_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEED_CASES = (('ssd_300_vgg', 8), ('ssd_300_mobilenet_v2', 16))
# The recipe of the accuracy run (flags of train_ssd_network.py).
RECIPE = ['--model_name=ssd_300_mobilenet_v2', '--batch_size=8', '--optimizer=adam',
          '--learning_rate=0.0015', '--learning_rate_decay_type=cosine', '--warmup_steps=100',
          '--end_learning_rate=0.00001', '--weight_decay=0.00004', '--seed=1',
          '--log_every_n_steps=20', '--save_interval_secs=300']
BATCH_SIZE = 8
# The VGG comparison (part 3), a short run of a few hundred steps: a constant learning rate
# after 10 warm-up steps (so every kept checkpoint is a fair intermediate result) and the
# paper's weight decay 5e-4 (Liu et al. 2016, sec. 3). Fine-tuned and from scratch share
# Adam 1e-4, the setting under which plain VGG learns from scratch at all (the
# paper's SGD 1e-3 does not, see docs/training.md), so the two differ only
# by the initial weights. The from-scratch fix is batch norm with Adam 1e-3.
VGG_ADAM = ['--optimizer=adam', '--learning_rate=0.0001', '--warmup_steps=10',
            '--weight_decay=0.0005']
VGG_FINETUNE = VGG_ADAM + ['--checkpoint_path={checkpoint}', '--checkpoint_model_scope=vgg_16',
                           '--ignore_missing_vars']
VGG_RUNS = (  # name, network, flags
    ('fine-tuned', 'ssd_300_vgg', VGG_FINETUNE),
    ('scratch', 'ssd_300_vgg', VGG_ADAM),
    ('scratch-bn', 'ssd_300_vgg_bn', ['--optimizer=adam', '--learning_rate=0.001',
                                      '--warmup_steps=10', '--weight_decay=0.0005']),
)
_PROGRESS = re.compile(r'step (\d+)(?:/\d+)?: loss ([\d.]+) \(([^)]*)\)')
_FINISHED = re.compile(r'Training finished at step (\d+)')


def measure_speed(records_dir, model_name, batch_size, warmup_steps, steps,
                  precisions=('float32',)):
    """Training images/s of one network in each precision (in this process, a fresh graph).

    Returns:
      dict precision -> images/s of the median step.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from deployment import model_deploy  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    from nets import precision as nets_precision  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel
    from training import train_lib  # pylint: disable=import-outside-toplevel

    with tf.Graph().as_default():
        dataset = dataset_factory.get_dataset('shapes', 'trainval', records_dir)
        network = nets_factory.get_network(model_name, dataset.num_classes)
        graph = train_lib.build_train_graph(
            network, dataset, preprocessing_factory.get_preprocessing(model_name, True),
            model_deploy.DeploymentConfig(clone_on_cpu=True), batch_size,
            {'learning_rate': 0.0001}, {'name': 'momentum'}, seed=1, precision=precisions[-1])
        sessions = {name: tf.compat.v1.Session(config=nets_precision.session_config(name))
                    for name in precisions}
        times = {name: [] for name in precisions}
        initialize = tf.compat.v1.global_variables_initializer()
        for session in sessions.values():
            session.run(initialize)
        for step in range(warmup_steps + steps):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(graph.train_op)
                if step >= warmup_steps:
                    times[name].append(time.perf_counter() - start)
        for session in sessions.values():
            session.close()
    return {name: batch_size / float(np.median(found)) for name, found in times.items()}


def _run(script, args, log_path):
    with open(log_path, 'w', encoding='utf-8') as log:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
        code = subprocess.call([sys.executable, os.path.join(ROOT, script)] + args,
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if code:
        sys.exit('%s failed (exit %d); see %s' % (script, code, log_path))


def _one_thread_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_NUM_INTRAOP_THREADS='1',
                TF_NUM_INTEROP_THREADS='1')


def last_progress(log_path):
    """(final step, total loss, {part: value}) of a training log: the step it finished at (or
    of its last progress line) and the losses of its last progress line."""
    found, finished = None, None
    with open(log_path, encoding='utf-8', errors='replace') as log:
        for line in log:
            found = _PROGRESS.search(line) or found
            finished = _FINISHED.search(line) or finished
    if found is None:
        return None
    parts = {k: float(v) for k, v in re.findall(r'(\w+) ([\d.]+)', found.group(3))}
    step = int((finished or found).group(1))
    return step, float(found.group(2)), parts


def _wait_all(processes, start):
    """Waits for the child processes {name: Popen}, in the order they end.

    Returns:
        {name: (exit code, wall seconds from `start` to its end, CPU seconds: user + system)}.
    """
    names = {process.pid: name for name, process in processes.items()}
    ended = {}
    while len(ended) < len(names):
        pid, status, usage = os.wait4(-1, 0)
        if pid in names:
            processes[names[pid]].returncode = os.waitstatus_to_exitcode(status)
            ended[names[pid]] = (processes[names[pid]].returncode, time.time() - start,
                                 usage.ru_utime + usage.ru_stime)
    return ended


def latest_step(train_dir):
    """Global step of the newest checkpoint of `train_dir` (0 without one)."""
    path = os.path.join(train_dir, 'checkpoint')
    if not os.path.isfile(path):
        return 0
    with open(path, encoding='utf-8') as f:
        found = re.search(r'^model_checkpoint_path: "[^"]*-(\d+)"', f.read(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def vgg_train(records_dir, work_dir, checkpoint, steps, save_steps, precision='float32',
              resume=False):
    """Runs VGG_RUNS side by side up to global step `steps`, a checkpoint every `save_steps`.

    With `resume` each run continues from its newest checkpoint (the input order seeded by
    that step, so that the continued run does not see the same images again); else it
    starts afresh.

    Returns:
        {name: {'exit', 'seconds' (wall), 'cpu_seconds', 'progress' (see last_progress)}}.
    """
    processes, logs, start = {}, {}, time.time()
    for name, model, flags in VGG_RUNS:
        run_dir = os.path.join(work_dir, 'vgg', name)
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir, exist_ok=True)
        train_dir = os.path.join(run_dir, 'train')
        args = ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
                '--model_name=%s' % model, '--batch_size=%d' % BATCH_SIZE,
                '--seed=%d' % (1 + latest_step(train_dir)),
                '--max_number_of_steps=%d' % steps, '--save_interval_steps=%d' % save_steps,
                '--max_checkpoints_to_keep=%d' % (steps // save_steps + 1),
                '--log_every_n_steps=5', '--save_summaries_secs=100000',
                '--precision=%s' % precision]
        args += [flag.format(checkpoint=checkpoint) for flag in flags]
        logs[name] = open(os.path.join(run_dir, 'train.log'), 'a' if resume else 'w',
                          encoding='utf-8')
        processes[name] = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'train_ssd_network.py')] + args,
            stdout=logs[name], stderr=subprocess.STDOUT, cwd=ROOT, env=_one_thread_env())
    results = {}
    for name, (code, seconds, cpu) in _wait_all(processes, start).items():
        logs[name].close()
        results[name] = {'exit': code, 'seconds': seconds, 'cpu_seconds': cpu,
                         'progress': last_progress(logs[name].name)}
    return results


def vgg_evaluate(records_dir, work_dir, eval_batches, step=None, precision='float32'):
    """Evaluates the last checkpoint (or that of `step`) of each VGG run, side by side.

    Returns:
        {name: metrics.json of the run's evaluation} for the runs that have the checkpoint.
    """
    evals = {}
    for name, model, _ in VGG_RUNS:
        train_dir = os.path.join(work_dir, 'vgg', name, 'train')
        checkpoint = train_dir if step is None else os.path.join(train_dir, 'model.ckpt-%d' % step)
        if not os.path.isfile(os.path.join(train_dir, 'checkpoint') if step is None else
                              checkpoint + '.index'):
            continue
        eval_dir = os.path.join(work_dir, 'vgg', name, 'eval' if step is None else
                                'eval-%d' % step)
        log = open(eval_dir + '.log', 'w', encoding='utf-8')
        evals[name] = (subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'eval_ssd_network.py'),
             '--checkpoint_path=%s' % checkpoint, '--eval_dir=%s' % eval_dir,
             '--dataset_dir=%s' % records_dir, '--dataset_split_name=test',
             '--model_name=%s' % model, '--batch_size=8',
             '--max_num_batches=%d' % eval_batches, '--precision=%s' % precision],
            stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT, env=_one_thread_env()), log, eval_dir)
    metrics = {}
    for name, (process, log, eval_dir) in evals.items():
        process.wait()
        log.close()
        path = os.path.join(eval_dir, 'metrics.json')
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                metrics[name] = json.load(f)
    return metrics


def print_vgg_results(results, metrics):
    """One line per VGG run: steps, wall and CPU time, last losses (training only), mAP."""
    for name, _, _ in VGG_RUNS:
        result = results.get(name, {})
        fields = []
        if 'exit' in result:
            fields.append('exit %d, %5.0f s wall, %5.0f s CPU' % (
                result['exit'], result['seconds'], result['cpu_seconds']))
        if result.get('progress'):
            step, total, parts = result['progress']
            fields.append('%d steps, last loss %.2f (cls_pos %.2f cls_neg %.2f loc %.2f)' % (
                step, total, parts.get('cls_pos', -1), parts.get('cls_neg', -1),
                parts.get('loc', -1)))
        found = metrics.get(name)
        if found:
            text = '%s on %d test images: mAP VOC07 %.4f VOC12 %.4f' % (
                os.path.basename(found['checkpoint']), found['num_images'], found['mAP_voc07'],
                found['mAP_voc12'])
            if found.get('coco'):
                text += ', COCO AP %.4f AP50 %.4f' % (found['coco']['AP'] or 0.0,
                                                       found['coco']['AP50'] or 0.0)
            fields.append(text)
        print('%-12s %s' % (name, ', '.join(fields)))


def accuracy_run(records_dir, work_dir, train_secs, max_steps, precision='float32'):
    """Trains from scratch for at most train_secs, evaluates, both in `precision`.

    Returns:
      (metrics, secs, steps).
    """
    train_dir = os.path.join(work_dir, 'train')
    eval_dir = os.path.join(work_dir, 'eval')
    shutil.rmtree(train_dir, ignore_errors=True)
    start = time.time()
    _run('train_ssd_network.py',
         ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
          '--max_train_secs=%d' % train_secs, '--max_number_of_steps=%d' % max_steps,
          '--precision=%s' % precision] + RECIPE,
         os.path.join(work_dir, 'train.log'))
    train_time = time.time() - start
    _run('eval_ssd_network.py',
         ['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
          '--dataset_dir=%s' % records_dir, '--dataset_split_name=test',
          '--model_name=ssd_300_mobilenet_v2', '--batch_size=16', '--precision=%s' % precision],
         os.path.join(work_dir, 'eval.log'))
    with open(os.path.join(eval_dir, 'metrics.json'), encoding='utf-8') as f:
        metrics = json.load(f)
    step = int(metrics['checkpoint'].rsplit('-', 1)[1])
    return metrics, train_time, step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work_dir', default='/tmp/ssd_bench_train', help='scratch folder')
    parser.add_argument('--num_train', type=int, default=4000, help='trainval images')
    parser.add_argument('--num_test', type=int, default=1000, help='test images')
    parser.add_argument('--speed_steps', type=int, default=10, help='timed steps per network')
    parser.add_argument('--train_secs', type=int, default=1800, help='accuracy run time limit')
    parser.add_argument('--max_steps', type=int, default=1400,
                        help='accuracy run steps (length of the cosine schedule)')
    parser.add_argument('--figure', default=None, help='copy the combined PR curve here')
    parser.add_argument('--speed_models', default=','.join(m for m, _ in SPEED_CASES),
                        help='networks of the speed part (comma separated)')
    precision_lib.add_flag(parser, help='speed part: also train in this precision, against '
                           'float32; accuracy and VGG parts: train and evaluate in it')
    parser.add_argument('--skip_speed', action='store_true')
    parser.add_argument('--skip_accuracy', action='store_true')
    parser.add_argument('--vgg', action='store_true', help='run the VGG comparison (part 3)')
    parser.add_argument('--vgg_num_train', type=int, default=2000,
                        help='trainval images of the VGG comparison\'s data')
    parser.add_argument('--vgg_num_test', type=int, default=300,
                        help='test images of the VGG comparison\'s data')
    parser.add_argument('--vgg_classifier_steps', type=int, default=600,
                        help='training steps (batch 32) of the vgg_16 stand-in')
    parser.add_argument('--vgg_checkpoint', default=None,
                        help='use this vgg_16.ckpt instead of training the stand-in')
    parser.add_argument('--vgg_steps', type=int, default=200,
                        help='training steps (batch 8) of each VGG run')
    parser.add_argument('--vgg_save_steps', type=int, default=20,
                        help='checkpoint period of the VGG runs in steps (all are kept)')
    parser.add_argument('--vgg_resume', action='store_true',
                        help='continue the VGG runs in --work_dir up to --vgg_steps')
    parser.add_argument('--vgg_eval_step', type=int, default=None,
                        help='do not train: evaluate the checkpoint of this step of each VGG '
                        'run already in --work_dir')
    parser.add_argument('--vgg_eval_batches', type=int, default=13,
                        help='test batches of 8 images evaluated per VGG run')
    record.add_flag(parser)
    args = parser.parse_args()
    for name in ('num_train', 'num_test', 'speed_steps', 'train_secs', 'max_steps',
                 'vgg_num_train', 'vgg_num_test', 'vgg_classifier_steps', 'vgg_steps',
                 'vgg_save_steps', 'vgg_eval_batches'):
        if getattr(args, name) < 1:
            parser.error('--%s must be >= 1' % name)
    if args.precision != 'float32':
        from nets import precision  # pylint: disable=import-outside-toplevel
        try:
            precision.check_machine(args.precision)
        except ValueError as error:
            parser.error(str(error))
    os.makedirs(args.work_dir, exist_ok=True)
    records_dir = os.path.join(args.work_dir, 'data', 'records')
    needed = not (args.skip_speed and args.skip_accuracy)
    if needed and not os.path.isfile(os.path.join(records_dir, 'shapes_test_summary.json')):
        from datasets import make_shapes_dataset  # pylint: disable=import-outside-toplevel
        records_dir = make_shapes_dataset.make_records(
            os.path.join(args.work_dir, 'data'), args.num_train, args.num_test, seed=7)
    print('machine: %s' % machine.describe())
    if not args.skip_speed:
        for model_name, batch_size in SPEED_CASES:
            if model_name not in args.speed_models.split(','):
                continue
            precisions = tuple(dict.fromkeys(('float32', args.precision)))
            speeds = measure_speed(records_dir, model_name, batch_size, 3, args.speed_steps,
                                   precisions)
            for name in precisions:
                print('train speed %-22s batch %2d: %6.2f images/s%s' % (
                    model_name, batch_size, speeds[name],
                    '' if len(precisions) == 1 else ' %-14s x%.2f of float32' % (
                        name, speeds[name] / speeds['float32'])))
    if not args.skip_accuracy:
        metrics, train_time, step = accuracy_run(records_dir, args.work_dir, args.train_secs,
                                                 args.max_steps, args.precision)
        print('accuracy run: ssd_300_mobilenet_v2 from scratch in %s, %d steps of batch %d in '
              '%.0f s (%.1f images/s, incl. start-up), %d test images'
              % (args.precision, step, BATCH_SIZE, train_time, step * BATCH_SIZE / train_time,
                 metrics['num_images']))
        for name, values in sorted(metrics['per_class'].items()):
            print('  %-10s num_gt %4d  AP07 %.4f  AP12 %.4f' % (
                name, values['num_gt'], values['ap_voc07'] or 0.0, values['ap_voc12'] or 0.0))
        print('mAP VOC07 %.4f  VOC12 %.4f  (goal VOC07 >= 0.85: %s)' % (
            metrics['mAP_voc07'], metrics['mAP_voc12'],
            'met' if metrics['mAP_voc07'] >= 0.85 else 'NOT met'))
        if args.figure:
            shutil.copyfile(os.path.join(args.work_dir, 'eval', 'pr_curves', 'pr_curves.png'),
                            args.figure)
            print('PR curves: %s' % args.figure)
    if args.vgg:
        run_vgg(args)
    print('machine at the end: %s' % machine.describe())


def run_vgg(args):
    """Part 3: the vgg_16 stand-in, the side-by-side VGG runs, their evaluation."""
    vgg_dir = os.path.join(args.work_dir, 'vgg_data')
    records_dir = os.path.join(vgg_dir, 'records')
    if args.vgg_eval_step is not None:
        print('VGG runs in %s evaluated at step %d; machine: %s'
              % (args.work_dir, args.vgg_eval_step, machine.describe()))
        print_vgg_results({}, vgg_evaluate(records_dir, args.work_dir, args.vgg_eval_batches,
                                           args.vgg_eval_step, args.precision))
        return
    if not os.path.isfile(os.path.join(records_dir, 'shapes_test_summary.json')):
        from datasets import make_shapes_dataset  # pylint: disable=import-outside-toplevel
        records_dir = make_shapes_dataset.make_records(vgg_dir, args.vgg_num_train,
                                                       args.vgg_num_test, seed=7)
    checkpoint = args.vgg_checkpoint
    made = os.path.join(args.work_dir, 'vgg_16', 'vgg_16.ckpt')
    if checkpoint is None and args.vgg_resume and os.path.isfile(made):
        checkpoint = made
    if checkpoint is None:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        from bench import vgg_classifier  # pylint: disable=import-outside-toplevel
        with tf.Graph().as_default():
            result = vgg_classifier.train_classifier(
                os.path.dirname(made), train_steps=args.vgg_classifier_steps)
        checkpoint = result['checkpoint']
        print('vgg_16 stand-in: %d steps, %d crops of %d px in %.0f s, held-out accuracy %.3f'
              % (result['steps'], result['crops_seen'], result['crop_size'], result['seconds'],
                 result['held_out_accuracy']))
    print('VGG runs side by side (one intra-op thread each), %d steps each, %s; machine: %s'
          % (args.vgg_steps, args.precision, machine.describe()))
    results = vgg_train(records_dir, args.work_dir, checkpoint, args.vgg_steps,
                        args.vgg_save_steps, args.precision, args.vgg_resume)
    print('VGG runs trained; machine: %s' % machine.describe())
    print_vgg_results(results, vgg_evaluate(records_dir, args.work_dir, args.vgg_eval_batches,
                                            precision=args.precision))


if __name__ == '__main__':
    sys.exit(record.run(main, 'train'))
