"""Distributed training benchmark: one process against a local cluster, and the parameter traffic.

    python -m bench.distributed [--work_dir DIR] [--batch_size 4] [--steps 40]
        [--networks ssd_300_mobilenet_v2,ssd_300_vgg] [--skip_cluster] [--paper_classes 21]

1. Speed: training images/s of ssd_300_mobilenet_v2 at --batch_size in one process
   (train_ssd_network.py) and in a 1 ps + 2 worker synchronous cluster
   (deployment.local_cluster, --batch_size per worker), from the progress lines after the
   first --warmup_steps global steps. On one 2-core machine the three processes share the
   same cores: expect no speed-up, the figure shows the cost of the distributed runtime.
2. Traffic, per network: the bytes one worker receives (parameters and batch-norm moving
   statistics it reads) and sends (gradients and batch-norm updates) per synchronous step,
   counted from the variables of the training graph, and measured on the ps task of the
   cluster: the kernel's counters of the ps process's TCP connections (`ss -tip`,
   bytes_received and bytes_acked) between two progress lines of the chief, divided by the
   global steps and the workers (gRPC framing included). The marks fall at the same point of
   a step, but a worker's read or gradient may land on the other side of one: the figure is
   exact to one transfer in 2 x (global steps) (1/60 with the default 30 VGG steps).
3. For docs/distributed.md's scaling on paper, per network at --paper_classes classes (VOC's 21):
   the parameters, the bytes P a worker moves each way per step, the largest variable, and the
   largest share of P on one of k ps tasks, round-robin and by size (model_deploy's
   strategies, variables in the order the training graph creates them).
Prints the machine (CPU, cores, load, TensorFlow version) and the figures.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

from bench import machine, record
from deployment import local_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEED_MODEL = 'ssd_300_mobilenet_v2'
NETWORKS = ('ssd_300_mobilenet_v2', 'ssd_300_vgg')
PROGRESS = re.compile(r'step (\d+)(?:/\d+)?: loss .*?([\d.]+) images/s')
CLUSTER_SPEED = re.compile(r'\(cluster ([\d.]+) images/s\)')
WAIT_SECS = 900


def _flags(records_dir, train_dir, model_name, batch_size, last_step):
    return ['--dataset_dir=%s' % records_dir, '--train_dir=%s' % train_dir,
            '--model_name=%s' % model_name, '--batch_size=%d' % batch_size,
            '--optimizer=momentum', '--learning_rate=0.0005', '--seed=1',
            '--max_number_of_steps=%d' % last_step, '--log_every_n_steps=1',
            '--save_interval_secs=100000', '--save_summaries_secs=100000',
            '--save_summaries_steps=100000', '--cluster_wait_secs=%d' % WAIT_SECS]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')


def _bytes(variable):
    return variable.shape.num_elements() * variable.dtype.base_dtype.size


def variable_traffic(records_dir, model_name):
    """Bytes per synchronous step of one worker, counted from the training graph's variables
    (the same with or without SyncReplicasOptimizer: its accumulators stay on the ps tasks).

    Returns:
        dict: trainable (parameters in = gradients out), moving (batch-norm statistics: read
        in, updated out), bytes_in, bytes_out, num_parameters.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tf_slim as slim  # pylint: disable=import-outside-toplevel

    from datasets import dataset_factory  # pylint: disable=import-outside-toplevel
    from deployment import model_deploy  # pylint: disable=import-outside-toplevel
    from nets import nets_factory  # pylint: disable=import-outside-toplevel
    from preprocessing import preprocessing_factory  # pylint: disable=import-outside-toplevel
    from training import train_lib  # pylint: disable=import-outside-toplevel

    tf.compat.v1.disable_eager_execution()
    with tf.Graph().as_default():
        dataset = dataset_factory.get_dataset('shapes', 'trainval', records_dir)
        network = nets_factory.get_network(model_name, dataset.num_classes)
        config = model_deploy.DeploymentConfig(clone_on_cpu=True, num_replicas=2,
                                               num_ps_tasks=1, replica_id=1)
        train_lib.build_train_graph(
            network, dataset, preprocessing_factory.get_preprocessing(model_name, True),
            config, 1, {'learning_rate': 0.001}, {'name': 'momentum'})
        trainable = tf.compat.v1.trainable_variables()
        names = {v.name for v in trainable}
        moving = [v for v in slim.get_model_variables(network.name) if v.name not in names]

        def size(variables):
            return sum(_bytes(v) for v in variables)

        return {'trainable': size(trainable), 'moving': size(moving),
                'bytes_in': size(trainable) + size(moving),
                'bytes_out': size(trainable) + size(moving),
                'num_parameters': sum(v.shape.num_elements() for v in trainable)}


def ps_shares(variables, num_tasks, strategy):
    """Bytes of `variables` (in creation order) on each of `num_tasks` ps tasks under a
    model_deploy ps strategy ('round_robin' or 'size')."""
    from deployment import model_deploy  # pylint: disable=import-outside-toplevel

    place = model_deploy.PS_STRATEGIES[strategy](num_tasks)
    shares = [0] * num_tasks
    for variable in variables:
        shares[place(variable.op)] += _bytes(variable)
    return shares


def paper_sizes(model_name, num_classes, ps_counts=(1, 2, 4, 8)):
    """What the scaling on paper needs of a network with `num_classes` classes.

    Returns:
        dict: num_parameters (trainable), num_moving (batch-norm statistics), bytes (P: the
        parameters and statistics a worker reads, and sends back as gradients and updates,
        per step), largest (bytes of the largest variable), shares {(strategy, k): bytes of
        the most loaded of k ps tasks}.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tf_slim as slim  # pylint: disable=import-outside-toplevel

    from nets import nets_factory  # pylint: disable=import-outside-toplevel

    tf.compat.v1.disable_eager_execution()
    with tf.Graph().as_default():
        network = nets_factory.get_network(model_name, num_classes)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        height, width = network.params.img_shape
        network.net(tf.zeros([1, height, width, 3]), is_training=True)
        model = slim.get_model_variables(network.name)
        trainable = {v.name for v in tf.compat.v1.trainable_variables()}
        # The training graph creates the global step first: it takes ps task 0 round-robin.
        placed = [global_step] + model
        return {'num_parameters': sum(v.shape.num_elements() for v in model
                                      if v.name in trainable),
                'num_moving': sum(v.shape.num_elements() for v in model
                                  if v.name not in trainable),
                'bytes': sum(_bytes(v) for v in model),
                'largest': max(_bytes(v) for v in model),
                'shares': {(strategy, k): max(ps_shares(placed, k, strategy))
                           for strategy in ('round_robin', 'size') for k in ps_counts}}


def tcp_bytes(pid, network=None):
    """(bytes received, bytes sent) so far on the established TCP connections of process
    `pid` (those it accepted and those it opened), from the kernel's tcp_info counters; `ss`
    runs in `network` (the local cluster's private_network.PrivateNetwork), if given."""
    argv = ['ss', '-tinpH', 'state', 'established']
    listing = subprocess.run(network.command(argv) if network else argv, capture_output=True,
                             text=True, check=True,
                             pass_fds=network.fds if network else ()).stdout
    received = sent = 0
    lines = listing.splitlines()
    for socket_line, info in zip(lines, lines[1:]):
        if re.search(r'\bpid=%d,' % pid, socket_line):
            received += sum(int(n) for n in re.findall(r'bytes_received:(\d+)', info))
            sent += sum(int(n) for n in re.findall(r'bytes_acked:(\d+)', info))
    return received, sent


def _speed(lines, warmup_steps, pattern):
    """Mean of the images/s figures of progress lines after `warmup_steps`."""
    values = []
    for line in lines:
        match = PROGRESS.search(line)
        if match and int(match.group(1)) > warmup_steps:
            found = pattern.search(line)
            if found:
                values.append(float(found.group(1)))
    return sum(values) / len(values) if values else float('nan')


def one_process(records_dir, work_dir, batch_size, steps, warmup_steps):
    """images/s of train_ssd_network.py in one process, no cluster (steady state)."""
    train_dir = os.path.join(work_dir, 'one_process')
    shutil.rmtree(train_dir, ignore_errors=True)
    log_path = os.path.join(work_dir, 'one_process.log')
    env = _env()
    env.pop('TF_CONFIG', None)
    with open(log_path, 'w', encoding='utf-8') as log:
        code = subprocess.call(
            [sys.executable, local_cluster.TRAIN_SCRIPT] + _flags(
                records_dir, train_dir, SPEED_MODEL, batch_size, warmup_steps + steps),
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, timeout=WAIT_SECS)
    if code:
        sys.exit('one-process run failed (exit %d); see %s' % (code, log_path))
    with open(log_path, encoding='utf-8', errors='replace') as log:
        return _speed(log, warmup_steps, re.compile(r'([\d.]+) images/s'))


def cluster_run(records_dir, work_dir, model_name, batch_size, steps, warmup_steps):
    """1 ps + 2 synchronous workers: the chief's cluster images/s, each worker's images/s and
    the ps bytes per global step and worker."""
    train_dir = os.path.join(work_dir, 'cluster_%s' % model_name)
    shutil.rmtree(train_dir, ignore_errors=True)
    log_path = os.path.join(work_dir, 'cluster_%s.log' % model_name)
    flags = _flags(records_dir, train_dir, model_name, batch_size, warmup_steps + steps)
    log = open(log_path, 'w', encoding='utf-8')
    cluster = local_cluster.LocalCluster(flags + ['--sync_replicas'], num_ps=1, num_workers=2,
                                         output=log, env=_env())
    with log, cluster:
        pid = cluster.process('ps 0').pid
        marks = []
        start = 0
        while len(marks) < 2:
            match, start = cluster.wait_for_line('worker 0', PROGRESS.pattern, WAIT_SECS,
                                                 start=start)
            step = int(match.group(1))
            if (not marks and step >= warmup_steps) or (marks and step >= warmup_steps + steps
                                                        - 1):
                marks.append((step, tcp_bytes(pid, cluster.network)))
            start += 1
        code = cluster.wait('worker 0', WAIT_SECS)
    if code:
        sys.exit('cluster run failed (exit %d); see %s' % (code, log_path))
    (step0, (received0, sent0)), (step1, (received1, sent1)) = marks
    workers = 2
    per_step = float(max(step1 - step0, 1) * workers)
    return {'cluster_images_per_sec': _speed(cluster.log('worker 0'), warmup_steps,
                                             CLUSTER_SPEED),
            'worker_images_per_sec': [_speed(cluster.log(name), warmup_steps,
                                             re.compile(r'([\d.]+) images/s'))
                                      for name in ('worker 0', 'worker 1')],
            'worker_in': (sent1 - sent0) / per_step,
            'worker_out': (received1 - received0) / per_step,
            'steps': step1 - step0}


def _mb(num_bytes):
    return '%.1f MB' % (num_bytes / 1e6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work_dir', default='/tmp/ssd_bench_distributed',
                        help='scratch folder')
    parser.add_argument('--batch_size', type=int, default=4, help='images per worker and step')
    parser.add_argument('--steps', type=int, default=40, help='timed global steps (mobilenet)')
    parser.add_argument('--vgg_steps', type=int, default=30, help='timed global steps (VGG)')
    parser.add_argument('--warmup_steps', type=int, default=3,
                        help='first global steps left out of the figures')
    parser.add_argument('--networks', default=','.join(NETWORKS),
                        help='networks of the traffic part (comma separated)')
    parser.add_argument('--skip_cluster', action='store_true',
                        help='only count the traffic from the graphs (no training runs)')
    parser.add_argument('--paper_classes', type=int, default=21,
                        help='classes of the networks of the scaling on paper (VOC: 21)')
    record.add_flag(parser)
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    from datasets import make_shapes_dataset  # pylint: disable=import-outside-toplevel
    records_dir = os.path.join(args.work_dir, 'shapes', 'records')
    if not os.path.isdir(records_dir):
        make_shapes_dataset.make_records(os.path.join(args.work_dir, 'shapes'), 16, 2, seed=1,
                                    min_side=200, max_side=400)
    print('Machine at start: %s' % machine.describe())
    networks = [n.strip() for n in args.networks.split(',') if n.strip()]
    if not args.skip_cluster:
        single = one_process(records_dir, args.work_dir, args.batch_size, args.steps,
                             args.warmup_steps)
        print('Machine: %s' % machine.describe())
        run = cluster_run(records_dir, args.work_dir, SPEED_MODEL, args.batch_size, args.steps,
                          args.warmup_steps)
        print('Machine: %s' % machine.describe())
        print('\n%s, batch %d per worker, synchronous, steady state after step %d:'
              % (SPEED_MODEL, args.batch_size, args.warmup_steps))
        print('  one process:          %.2f images/s' % single)
        print('  1 ps + 2 workers:     %.2f images/s (cluster; workers %s)'
              % (run['cluster_images_per_sec'],
                 ', '.join('%.2f' % s for s in run['worker_images_per_sec'])))
        print('  ratio cluster / one process: %.2f' % (run['cluster_images_per_sec'] / single))
    print('\nTraffic of one worker per synchronous step (parameters in, gradients out):')
    print('| network | parameters | counted in | counted out | measured in | measured out | '
          'global steps |')
    print('|---|---|---|---|---|---|---|')
    for name in networks:
        counted = variable_traffic(records_dir, name)
        measured = None
        if not args.skip_cluster:
            steps = args.steps if name == SPEED_MODEL else args.vgg_steps
            measured = run if name == SPEED_MODEL else cluster_run(
                records_dir, args.work_dir, name, 1, steps, 2)
        print('| %s | %.2f M | %s | %s | %s | %s | %s |' % (
            name, counted['num_parameters'] / 1e6, _mb(counted['bytes_in']),
            _mb(counted['bytes_out']),
            _mb(measured['worker_in']) if measured else '-',
            _mb(measured['worker_out']) if measured else '-',
            measured['steps'] if measured else '-'))
        sys.stdout.flush()
    print('\n(measured in / out: what the ps sent / received, per global step and worker)')
    ps_counts = (1, 2, 4, 8)
    print('\nFor the scaling on paper, %d classes: P (parameters and batch-norm statistics) each '
          'way per step; the most loaded of k ps tasks, round-robin / by size:'
          % args.paper_classes)
    print('| network | parameters | statistics | P | largest variable | %s |'
          % ' | '.join('k=%d' % k for k in ps_counts))
    print('|---|---|---|---|---|%s' % ('---|' * len(ps_counts)))
    for name in networks:
        sizes = paper_sizes(name, args.paper_classes, ps_counts)
        print('| %s | %.2f M | %.2f M | %s | %s | %s |' % (
            name, sizes['num_parameters'] / 1e6, sizes['num_moving'] / 1e6, _mb(sizes['bytes']),
            _mb(sizes['largest']), ' | '.join(
                '%s / %s' % (_mb(sizes['shares'][('round_robin', k)]),
                             _mb(sizes['shares'][('size', k)])) for k in ps_counts)))
    print('Machine at end: %s' % machine.describe())
    return 0


if __name__ == '__main__':
    sys.exit(record.run(main, 'distributed'))
