"""Training benchmark: images/s of the SSD networks and the mAP reached on the shapes set.

    python -m bench.train [--work_dir DIR] [--train_secs 1800] [--skip_speed] [--skip_accuracy]

1. Speed: training images/s (forward + backward + update, the real input pipeline) of
   ssd_300_vgg at batch 8 and ssd_300_mobilenet_v2 at batch 16, after warm-up steps.
2. Accuracy: ssd_300_mobilenet_v2 trained from scratch on the synthetic shapes set
   (train_ssd_network.py, fixed seed) for at most --train_secs seconds, then evaluated
   on the test split (eval_ssd_network.py, difficult objects excluded): VOC07/VOC12 mAP.
Prints the machine (CPU, cores, load, TensorFlow version) and the figures.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from bench import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEED_CASES = (('ssd_300_vgg', 8), ('ssd_300_mobilenet_v2', 16))
# The recipe of the accuracy run (flags of train_ssd_network.py).
RECIPE = ['--model_name=ssd_300_mobilenet_v2', '--batch_size=8', '--optimizer=adam',
          '--learning_rate=0.0015', '--learning_rate_decay_type=cosine', '--warmup_steps=100',
          '--end_learning_rate=0.00001', '--weight_decay=0.00004', '--seed=1',
          '--log_every_n_steps=20', '--save_interval_secs=300']
BATCH_SIZE = 8


def measure_speed(records_dir, model_name, batch_size, warmup_steps, steps):
    """Training images/s of one network (in this process, a fresh graph)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from deployment import model_deploy  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel
    from training import train_lib  # pylint: disable=import-outside-toplevel

    with tf.Graph().as_default():
        dataset = dataset_factory.get_dataset('shapes', 'trainval', records_dir)
        network = nets_factory.get_network(model_name, dataset.num_classes)
        graph = train_lib.build_train_graph(
            network, dataset, preprocessing_factory.get_preprocessing(model_name, True),
            model_deploy.DeploymentConfig(clone_on_cpu=True), batch_size,
            {'learning_rate': 0.0001}, {'name': 'momentum'}, seed=1)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for _ in range(warmup_steps):
                session.run(graph.train_op)
            start = time.time()
            for _ in range(steps):
                session.run(graph.train_op)
            elapsed = time.time() - start
    return steps * batch_size / elapsed


def _run(script, args, log_path):
    with open(log_path, 'w', encoding='utf-8') as log:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
        code = subprocess.call([sys.executable, os.path.join(ROOT, script)] + args,
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if code:
        sys.exit('%s failed (exit %d); see %s' % (script, code, log_path))


def accuracy_run(records_dir, work_dir, train_secs, max_steps):
    """Trains from scratch for at most train_secs, evaluates; returns (metrics, secs, steps)."""
    train_dir = os.path.join(work_dir, 'train')
    eval_dir = os.path.join(work_dir, 'eval')
    shutil.rmtree(train_dir, ignore_errors=True)
    start = time.time()
    _run('train_ssd_network.py',
         ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
          '--max_train_secs=%d' % train_secs, '--max_number_of_steps=%d' % max_steps] + RECIPE,
         os.path.join(work_dir, 'train.log'))
    train_time = time.time() - start
    _run('eval_ssd_network.py',
         ['--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % eval_dir,
          '--dataset_dir=%s' % records_dir, '--dataset_split_name=test',
          '--model_name=ssd_300_mobilenet_v2', '--batch_size=16'],
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
    parser.add_argument('--skip_speed', action='store_true')
    parser.add_argument('--skip_accuracy', action='store_true')
    args = parser.parse_args()
    for name in ('num_train', 'num_test', 'speed_steps', 'train_secs', 'max_steps'):
        if getattr(args, name) < 1:
            parser.error('--%s must be >= 1' % name)
    from tests import helpers  # pylint: disable=import-outside-toplevel
    os.makedirs(args.work_dir, exist_ok=True)
    records_dir = os.path.join(args.work_dir, 'data', 'records')
    if not os.path.isfile(os.path.join(records_dir, 'shapes_test_summary.json')):
        records_dir = helpers.make_shapes_records(
            os.path.join(args.work_dir, 'data'), args.num_train, args.num_test, seed=7)
    print('machine: %s' % machine.describe())
    if not args.skip_speed:
        for model_name, batch_size in SPEED_CASES:
            if model_name not in args.speed_models.split(','):
                continue
            speed = measure_speed(records_dir, model_name, batch_size, 3, args.speed_steps)
            print('train speed %-22s batch %2d: %6.2f images/s' % (model_name, batch_size, speed))
    if not args.skip_accuracy:
        metrics, train_time, step = accuracy_run(records_dir, args.work_dir, args.train_secs,
                                                 args.max_steps)
        print('accuracy run: ssd_300_mobilenet_v2 from scratch, %d steps of batch %d in %.0f s '
              '(%.1f images/s, incl. start-up), %d test images'
              % (step, BATCH_SIZE, train_time, step * BATCH_SIZE / train_time,
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
    print('machine at the end: %s' % machine.describe())


if __name__ == '__main__':
    main()
