"""A real cluster on 127.0.0.1 (deployment/local_cluster.py): 1 ps + 2 workers train
ssd_300_mobilenet_v2 synchronously on tiny shapes records while a worker, the chief and the ps
are killed and started again; and the launcher itself on a stand-in trainer.

The cluster runs once (module fixture, bounded waits on log lines, no sleeps); each test
checks one property of that run.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import tensorflow as tf

from deployment import local_cluster
from nets import checkpoint_state
from tests import helpers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
LAST_STEP = 14
WAIT_SECS = 400
PROGRESS = r'step (\d+)/%d: loss ([\d.]+)' % LAST_STEP


def _wait_for_step(cluster, name, step, start=0):
    """Waits for a progress line of task `name` at global step >= `step`; returns its index."""
    while True:
        match, line = cluster.wait_for_line(name, PROGRESS, WAIT_SECS, start=start)
        if int(match.group(1)) >= step:
            return line
        start = line + 1


def _latest_step(train_dir):
    latest = tf.train.latest_checkpoint(train_dir)
    return int(latest.rsplit('-', 1)[1]) if latest else None


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Runs the whole scenario once; returns what the tests check."""
    work = tmp_path_factory.mktemp('cluster')
    records = helpers.make_shapes_records(str(work / 'shapes'), 8, 2, seed=5, min_side=64,
                                          max_side=96)
    train_dir = str(work / 'train')
    flags = ['--dataset_dir=%s' % records, '--train_dir=%s' % train_dir,
             '--model_name=ssd_300_mobilenet_v2', '--batch_size=2', '--optimizer=adam',
             '--learning_rate=0.002', '--sync_replicas', '--max_number_of_steps=%d' % LAST_STEP,
             '--log_every_n_steps=1', '--save_interval_steps=2', '--save_summaries_secs=3600',
             '--seed=1', '--num_readers=1', '--num_preprocessing_threads=1',
             '--cluster_wait_secs=%d' % WAIT_SECS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_NUM_INTEROP_THREADS='2',
               TF_NUM_INTRAOP_THREADS='2')
    events = {}
    with open(work / 'cluster.log', 'w') as log:
        cluster = local_cluster.LocalCluster(flags, num_ps=1, num_workers=2, output=log, env=env)
        try:
            cluster.start()
            line = _wait_for_step(cluster, 'worker 0', 2)
            # A worker dies and comes back. SyncReplicasOptimizer counts gradients, not
            # workers: a chief alone takes both tokens of a step and could finish the run
            # before the worker is back. Killed just after a progress line, the worker holds
            # this step's second token and has not sent the next gradient yet, so the chief
            # waits for the new worker; it is also held (SIGSTOP) until the worker's session
            # is ready.
            cluster.wait_for_line('worker 1', PROGRESS, WAIT_SECS,
                                  start=len(cluster.log('worker 1')))
            cluster.kill('worker 1')
            cluster.signal('worker 0', signal.SIGSTOP)
            events['worker_restart_line'] = len(cluster.log('worker 1'))
            cluster.start('worker 1')
            try:
                cluster.wait_for_line('worker 1', 'Running local_init_op', WAIT_SECS,
                                      start=events['worker_restart_line'])
            finally:
                cluster.signal('worker 0', signal.SIGCONT)
            cluster.wait_for_line('worker 1', PROGRESS, WAIT_SECS,
                                  start=events['worker_restart_line'])
            line = _wait_for_step(cluster, 'worker 0', 6, start=line)
            # The chief dies and comes back. Worker 1 is held (SIGSTOP) until the new chief's
            # first step: alone, it would send both gradients of every step the new chief's
            # queue runner aggregates, and on busy cores run ahead by many steps, or to the
            # end, while the new chief builds its graph and starts its first step.
            cluster.signal('worker 1', signal.SIGSTOP)
            try:
                cluster.kill('worker 0')
                events['chief_checkpoint'] = _latest_step(train_dir)
                start = len(cluster.log('worker 0'))
                cluster.start('worker 0')
                match, line = cluster.wait_for_line(
                    'worker 0', r'Restoring parameters from (\S+)', WAIT_SECS, start=start)
                events['chief_restored'] = match.group(1)
                # The chief saves when its session is created, before any update.
                match, _ = cluster.wait_for_line('worker 0', r'Saving checkpoints for (\d+)',
                                                 WAIT_SECS, start=line)
                events['chief_first_save'] = int(match.group(1))
                match, line = cluster.wait_for_line('worker 0', PROGRESS, WAIT_SECS, start=line)
                events['chief_first_step'] = int(match.group(1))
            finally:
                cluster.signal('worker 1', signal.SIGCONT)
            line = _wait_for_step(cluster, 'worker 0', 10, start=line)
            # The ps dies and comes back: both replicas recover from the last checkpoint.
            events['worker_line_at_ps_kill'] = len(cluster.log('worker 1'))
            cluster.kill('ps 0')
            events['ps_checkpoint'] = _latest_step(train_dir)
            cluster.start('ps 0')
            match, line = cluster.wait_for_line('worker 0', r'Restoring parameters from (\S+)',
                                                WAIT_SECS, start=line)
            events['ps_restored'] = match.group(1)
            events['chief_code'] = cluster.wait('worker 0', WAIT_SECS)
            events['worker_code'] = cluster.wait('worker 1', WAIT_SECS)
        finally:
            cluster.stop_all()
    logs = {name: cluster.log(name) for name in cluster.tasks}
    return types.SimpleNamespace(train_dir=train_dir, logs=logs, events=events,
                                 ps_code=cluster.process('ps 0').returncode)


def _progress(lines):
    return [(int(m.group(1)), float(m.group(2)))
            for m in (re.search(PROGRESS, line) for line in lines) if m]


def test_sync_cluster_reaches_the_last_step_and_the_loss_falls(run):
    assert run.events['chief_code'] == 0, '\n'.join(run.logs['worker 0'][-30:])
    assert run.events['worker_code'] == 0, '\n'.join(run.logs['worker 1'][-30:])
    assert _latest_step(run.train_dir) == LAST_STEP
    assert 'Training finished at step %d' % LAST_STEP in '\n'.join(run.logs['worker 0'])
    losses = [loss for _, loss in _progress(run.logs['worker 0'] + run.logs['worker 1'])]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 1.0, losses
    chief_lines = [line for line in run.logs['worker 0'] if re.search(PROGRESS, line)]
    assert all('(cluster ' in line for line in chief_lines)
    assert not any('(cluster ' in line for line in run.logs['worker 1'])


def test_only_the_chief_writes_checkpoints_and_summaries(run):
    assert any('Saving checkpoints for' in line for line in run.logs['worker 0'])
    assert not any('Saving checkpoints for' in line for line in run.logs['worker 1'])
    # One events file per chief process (started twice); the worker (also twice) wrote none.
    assert len(glob.glob(os.path.join(run.train_dir, 'events.out.tfevents.*'))) == 2


def test_a_killed_worker_rejoins_and_finishes(run):
    after = run.logs['worker 1'][run.events['worker_restart_line']:]
    assert after[0].startswith('started (pid ')
    assert _progress(after)
    assert 'Training finished at step %d' % LAST_STEP in '\n'.join(after)


def test_a_killed_chief_resumes_from_its_last_checkpoint(run):
    step = run.events['chief_checkpoint']
    assert step is not None and step >= 2
    assert run.events['chief_restored'].endswith('model.ckpt-%d' % step)
    # The global step is the checkpoint's again, and training goes on from there.
    assert run.events['chief_first_save'] == step
    assert step <= run.events['chief_first_step'] <= step + 3


def test_a_killed_ps_is_recovered_from_the_last_checkpoint(run):
    step = run.events['ps_checkpoint']
    assert run.events['ps_restored'].endswith('model.ckpt-%d' % step)
    after = '\n'.join(run.logs['worker 1'][run.events['worker_line_at_ps_kill']:])
    # The worker's session failed, was created again and waited for the chief's restore.
    assert 'preemption' in after
    assert 'Running local_init_op' in after.split('preemption', 1)[1]
    assert 'Training finished at step %d' % LAST_STEP in after


def test_no_checkpoint_was_lost_to_the_kills(run):
    listed = checkpoint_state.listed(run.train_dir)
    assert listed[-1] == os.path.join(run.train_dir, 'model.ckpt-%d' % LAST_STEP)
    assert [checkpoint_state.load_problem(prefix) for prefix in listed] == [None] * len(listed)
    text = open(os.path.join(run.train_dir, 'checkpoint')).read()
    assert run.train_dir not in text   # relative entries: the dir can be moved


def test_the_ps_stops_cleanly_on_sigterm(run):
    assert run.ps_code == 0
    assert 'ps 0 stopping on signal %d' % signal.SIGTERM in '\n'.join(run.logs['ps 0'])


STAND_IN = textwrap.dedent('''\
    """Stand-in trainer: prints its role; a ps task serves until SIGTERM (exit 0); the chief
    (worker 0) exits with the code given as argument, or with 'wait' waits to be stopped."""
    import json, os, signal, sys, time
    config = json.loads(os.environ['TF_CONFIG'])
    task = config['task']
    if task['type'] == 'ps':
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print('role %s %d of %s' % (task['type'], task['index'], sorted(config['cluster'])),
          flush=True)
    if task['type'] == 'ps' or sys.argv[1] == 'wait':
        while True:
            time.sleep(0.05)
    if task['type'] == 'worker' and task['index'] == 0:
        sys.exit(int(sys.argv[1]))
    ''')


@pytest.fixture
def stand_in(tmp_path):
    script = tmp_path / 'stand_in.py'
    script.write_text(STAND_IN)
    return str(script)


def test_launcher_merges_logs_stops_everything_and_returns_the_chief_code(stand_in, tmp_path):
    output = tmp_path / 'out.log'
    with open(output, 'w') as stream:
        cluster = local_cluster.LocalCluster(['3'], num_ps=2, num_workers=2, evaluator=True,
                                             output=stream, script=stand_in)
        cluster.start()
        for name in cluster.tasks:
            cluster.wait_for_line(name, '^role ', 60)
        assert cluster.run(grace_secs=10, stop_secs=10) == 3
    text = output.read_text()
    for name in ('worker 0', 'worker 1', 'ps 0', 'ps 1', 'evaluator 0'):
        assert re.search(r'^%s\s*\| role %s of \[\'ps\', \'worker\'\]' % (name, name), text,
                         re.M), text
    assert not cluster.running()
    assert cluster.process('ps 1').returncode == 0


EVALUATING_STAND_IN = textwrap.dedent('''\
    """Stand-in of a chief and an evaluator. The chief saves checkpoint 0, waits until it is
    evaluated, saves its last checkpoint (3) and ends at once. The evaluator evaluates the
    newest checkpoint whenever it changes, each in 2 s, writing metrics.json and then
    printing `Checkpoint <path> (step N)` as eval_ssd_network.py does; with `stuck` it
    stops after checkpoint 0."""
    import json, os, sys, time
    config = json.loads(os.environ['TF_CONFIG'])
    train_dir, mode = sys.argv[1].split('=', 1)[1], sys.argv[2]
    metrics = os.path.join(train_dir, 'eval', 'metrics.json')

    def save(step):
        path = os.path.join(train_dir, 'model.ckpt-%d' % step)
        with open(os.path.join(train_dir, 'checkpoint.tmp'), 'w') as state:
            state.write('model_checkpoint_path: "%s"\\n' % path)
        os.replace(os.path.join(train_dir, 'checkpoint.tmp'),
                   os.path.join(train_dir, 'checkpoint'))

    def evaluated():
        try:
            with open(metrics) as f:
                return json.load(f)['checkpoint']
        except (OSError, ValueError):
            return None

    if config['task']['type'] == 'worker':
        save(0)
        while evaluated() is None:
            time.sleep(0.05)
        save(3)
        sys.exit(0)
    done = None
    while True:
        try:
            with open(os.path.join(train_dir, 'checkpoint')) as state:
                path = state.read().split('"')[1]
        except (OSError, IndexError):
            path = None
        if path and path != done and not (mode == 'stuck' and done):
            time.sleep(2)
            os.makedirs(os.path.dirname(metrics), exist_ok=True)
            with open(metrics + '.tmp', 'w') as f:
                json.dump({'checkpoint': path}, f)
            os.replace(metrics + '.tmp', metrics)
            print('Checkpoint %s (step %s)' % (path, path.rsplit('-', 1)[1]), flush=True)
            done = path
        time.sleep(0.05)
    ''')


def _evaluating_cluster(tmp_path, mode):
    script = tmp_path / 'evaluating_stand_in.py'
    script.write_text(EVALUATING_STAND_IN)
    train_dir = tmp_path / 'train'
    train_dir.mkdir()
    cluster = local_cluster.LocalCluster(['--train_dir=%s' % train_dir, mode], num_ps=0,
                                         num_workers=1, evaluator=True, output=None,
                                         script=str(script))
    return cluster, train_dir


def test_the_evaluator_finishes_the_last_checkpoint_before_it_is_stopped(tmp_path):
    cluster, train_dir = _evaluating_cluster(tmp_path, 'finish')
    cluster.start()
    assert cluster.run(grace_secs=10, stop_secs=10, eval_finish_secs=120) == 0
    metrics = json.loads((train_dir / 'eval' / 'metrics.json').read_text())
    assert metrics['checkpoint'] == str(train_dir / 'model.ckpt-3')
    log = cluster.log('evaluator 0')
    assert 'training ended; waiting up to 120 s (--eval_finish_secs) for the evaluation of ' \
        'model.ckpt-3' in log
    assert 'Checkpoint %s (step 3)' % (train_dir / 'model.ckpt-3') in log
    assert not cluster.running()


def test_the_evaluator_is_stopped_after_its_time_limit(tmp_path):
    cluster, train_dir = _evaluating_cluster(tmp_path, 'stuck')
    cluster.start()
    assert cluster.run(grace_secs=10, stop_secs=10, eval_finish_secs=1) == 0
    assert not cluster.running()
    log = '\n'.join(cluster.log('evaluator 0'))
    assert 'stopping without the evaluation of model.ckpt-3: evaluator 0: no line matching' in log
    assert json.loads((train_dir / 'eval' / 'metrics.json').read_text())['checkpoint'] == str(
        train_dir / 'model.ckpt-0')


def test_a_real_evaluator_leaves_the_metrics_of_the_last_step(tmp_path):
    records = helpers.make_shapes_records(str(tmp_path / 'shapes'), 4, 2, seed=6, min_side=64,
                                          max_side=96)
    train_dir = tmp_path / 'train'
    flags = ['--dataset_dir=%s' % records, '--train_dir=%s' % train_dir,
             '--model_name=ssd_300_mobilenet_v2', '--batch_size=2', '--max_number_of_steps=3',
             '--log_every_n_steps=1', '--save_summaries_secs=3600', '--num_readers=1',
             '--num_preprocessing_threads=1', '--cluster_wait_secs=%d' % WAIT_SECS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_NUM_INTEROP_THREADS='2',
               TF_NUM_INTRAOP_THREADS='2')
    with open(tmp_path / 'cluster.log', 'w') as log:
        cluster = local_cluster.LocalCluster(flags, num_ps=0, num_workers=1, evaluator=True,
                                             output=log, env=env)
        try:
            cluster.start()
            code = cluster.run(grace_secs=30, stop_secs=10, eval_finish_secs=WAIT_SECS)
        finally:
            cluster.stop_all()
    assert code == 0, (tmp_path / 'cluster.log').read_text()[-3000:]
    metrics = json.loads((train_dir / 'eval' / 'metrics.json').read_text())
    assert metrics['checkpoint'] == str(train_dir / 'model.ckpt-3')


def test_last_checkpoint_reads_the_checkpoint_state_file(tmp_path):
    assert local_cluster.last_checkpoint(str(tmp_path)) is None
    (tmp_path / 'checkpoint').write_text(
        'model_checkpoint_path: "/t/model.ckpt-600"\n'
        'all_model_checkpoint_paths: "/t/model.ckpt-400"\n'
        'all_model_checkpoint_paths: "/t/model.ckpt-600"\n')
    assert local_cluster.last_checkpoint(str(tmp_path)) == 'model.ckpt-600'
    assert local_cluster.train_dir_of(['--batch_size=2', '--train_dir', '/t', '-x']) == '/t'


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])  # SIGINT: Ctrl-C
def test_launcher_command_stops_the_tasks_on_a_signal(stand_in, signum):
    process = subprocess.Popen(
        [sys.executable, '-m', 'deployment.local_cluster', '--num_ps=1', '--num_workers=2',
         '--script=%s' % stand_in, '--', 'wait'],
        cwd=local_cluster.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids = []
    for line in process.stdout:
        pids += re.findall(r'started \(pid (\d+)\)', line)
        if line.startswith('ps 0') and 'role ps' in line:
            break
    process.send_signal(signum)
    rest = process.communicate(timeout=60)[0]
    # The chief's code: the launcher stops every task with SIGTERM.
    assert process.returncode == 128 + signal.SIGTERM
    assert 'ps 0     | exited with code 0' in rest
    assert 'worker 0 | exited with code -%d' % signal.SIGTERM in rest
    for pid in map(int, pids):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_launcher_needs_every_ps_and_every_unfinished_worker(stand_in):
    """A worker that finished (exit 0) and a failed evaluator leave the job going; a ps that
    is gone ends it (run() then stops every task: tests/deployment/test_cluster_faults.py)."""
    cluster = local_cluster.LocalCluster(['wait'], num_ps=1, num_workers=2, chief=True,
                                         evaluator=True, output=None, script=stand_in)
    try:
        cluster.start()
        for name in cluster.tasks:
            cluster.wait_for_line(name, '^role ', 60)
        assert cluster.lost_task() is None
        cluster.stop('worker 1')
        assert cluster.lost_task() == ('worker 1', -signal.SIGTERM)
        cluster.start('worker 1')
        cluster.wait_for_line('worker 1', '^role ', 60, start=len(cluster.log('worker 1')))
        cluster.kill('evaluator 0')
        assert cluster.lost_task() is None
        cluster.kill('ps 0')
        assert cluster.lost_task() == ('ps 0', -signal.SIGKILL)
    finally:
        cluster.stop_all()
    assert local_cluster.describe_exit(-signal.SIGKILL) == 'was killed by signal 9 (SIGKILL)'
    assert local_cluster.describe_exit(3) == 'exited with code 3'


NETWORK_PROBE = textwrap.dedent('''\
    """Listens on its cluster port on every interface, as TensorFlow's server does; a worker
    connects to the ps; both print their network interfaces."""
    import json, os, socket, time
    config = json.loads(os.environ['TF_CONFIG'])
    task = config['task']
    host, port = config['cluster'][task['type']][task['index']].rsplit(':', 1)
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(('::', int(port)))
    server.listen()
    print('interfaces %s' % sorted(name for _, name in socket.if_nameindex()), flush=True)
    if task['type'] == 'worker':
        ps_host, ps_port = config['cluster']['ps'][0].rsplit(':', 1)
        for _ in range(600):
            try:
                socket.create_connection((ps_host, int(ps_port)), timeout=1).close()
                print('reached the ps', flush=True)
                break
            except OSError:
                time.sleep(0.05)
    while True:
        time.sleep(0.05)
    ''')


def test_tasks_run_in_a_private_network_of_loopback_only(tmp_path):
    """Their servers listen on every interface, yet only the cluster's processes reach them."""
    script = tmp_path / 'network_probe.py'
    script.write_text(NETWORK_PROBE)
    cluster = local_cluster.LocalCluster([], num_ps=1, num_workers=1, output=None,
                                         script=str(script))
    try:
        cluster.start()
        refused = [line for line in cluster.log('launcher') if 'no private network' in line]
        if refused:
            pytest.skip(refused[0])
        cluster.wait_for_line('worker 0', '^reached the ps$', 60)
        for name in ('ps 0', 'worker 0'):
            match, _ = cluster.wait_for_line(name, r'^interfaces (.*)$', 60)
            assert match.group(1) == "['lo']"
            host, port = cluster.address(name).rsplit(':', 1)
            assert host == '127.0.0.1'
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, int(port)), timeout=5).close()
    finally:
        cluster.stop_all()


@pytest.mark.parametrize('argv, message', [
    ([], 'give the flags of train_ssd_network.py after --'),
    (['--num_ps=0', '--', '--x'], '2 replicas need --num_ps >= 1'),
    (['--num_workers=0', '--', '--x'], '--num_workers must be >= 1 without --chief'),
])
def test_launcher_refuses_bad_arguments(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        local_cluster.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
