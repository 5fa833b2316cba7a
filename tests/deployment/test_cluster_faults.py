"""Lost and hung tasks of a real cluster (1 ps + 2 synchronous workers on 127.0.0.1, the
trainer's own cluster code with a linear model: tests/deployment/toy_trainer.py) under the
local launcher: each fault stops the job in bounded time with the task named, and every
checkpoint the chief listed still loads.

Restarted tasks (TFJob's OnFailure) rejoin: test_local_cluster.py kills and restarts a worker,
the chief and the ps of the SSD trainer.
"""
import os
import re
import signal
import time

import pytest

from deployment import local_cluster
from nets import checkpoint_state

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
TOY_TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'toy_trainer.py')
START_SECS = 300          # bounded waits for the tasks to start on busy cores
OPERATION_SECS = 15       # --operation_timeout_secs of the tasks
# A hung task: TensorFlow's timeout, then closing the session (bounded alike), the watchdog's
# grace and the probes.
HANG_BOUND_SECS = 3 * OPERATION_SECS + 30
KILL_BOUND_SECS = 30      # the launcher notices a lost process within a second


@pytest.fixture(scope='module')
def records(tmp_path_factory):
    """Any existing folder does for --dataset_dir: the toy model reads no data."""
    return str(tmp_path_factory.mktemp('records'))


def _start(tmp_path, records):
    flags = ['--dataset_dir=%s' % records, '--train_dir=%s' % (tmp_path / 'train'),
             '--batch_size=4', '--learning_rate=0.05', '--sync_replicas',
             '--max_number_of_steps=1000000000', '--log_every_n_steps=100',
             '--save_interval_secs=1', '--save_summaries_secs=3600',
             '--cluster_wait_secs=%d' % START_SECS,
             '--operation_timeout_secs=%d' % OPERATION_SECS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', TF_NUM_INTEROP_THREADS='1',
               TF_NUM_INTRAOP_THREADS='1')
    log = open(tmp_path / 'cluster.log', 'w')  # noqa: SIM115 (closed by the test)
    cluster = local_cluster.LocalCluster(flags, num_ps=1, num_workers=2, output=log, env=env,
                                         script=TOY_TRAINER)
    cluster.start()
    return cluster, log


def _training(cluster):
    """Waits until both replicas step and the chief has saved after that."""
    for name in ('worker 0', 'worker 1'):
        cluster.wait_for_line(name, r'step \d+/\d+: loss', START_SECS)
    cluster.wait_for_line('worker 0', r'Saving checkpoints for \d+', START_SECS,
                          start=len(cluster.log('worker 0')))


def _checkpoint_step(prefix):
    return int(prefix.rsplit('-', 1)[1])


@pytest.mark.parametrize('fault, task, code, line', [
    ('kill', 'ps 0', 128 + signal.SIGKILL,
     ('launcher', r'^ps 0 was killed by signal 9 \(SIGKILL\) while the chief trains; the job '
                  r'cannot go on: stopping every task$')),
    ('kill', 'worker 1', 128 + signal.SIGKILL,
     ('launcher', r'^worker 1 was killed by signal 9 \(SIGKILL\) while the chief trains')),
    ('kill', 'worker 0', 128 + signal.SIGKILL,
     ('launcher', r'^the chief \(worker 0\) was killed by signal 9 \(SIGKILL\)$')),
    ('hang', 'ps 0', 1,
     ('replicas', r'ps 0 at {ps} accepts connections but does not answer within 2 s '
                  r'\(hung\?\)')),
    ('hang', 'worker 1', 1,
     ('worker 0', r'worker 1 at {worker} accepts connections but does not answer within 2 s')),
])
def test_a_lost_or_hung_task_stops_the_job_in_bounded_time_naming_it(tmp_path, records, fault,
                                                                      task, code, line):
    cluster, log = _start(tmp_path, records)
    try:
        _training(cluster)
        saved = checkpoint_state.latest(str(tmp_path / 'train'))
        started = time.monotonic()
        if fault == 'kill':
            cluster.kill(task)
        else:
            cluster.signal(task, signal.SIGSTOP)
        result = cluster.run(grace_secs=5, stop_secs=5)
        elapsed = time.monotonic() - started
    finally:
        for name in cluster.tasks:
            cluster.signal(name, signal.SIGCONT)
        cluster.stop_all(5)
        log.close()
    logs = {name: cluster.log(name) for name in list(cluster.tasks) + ['launcher']}
    logs['replicas'] = logs['worker 0'] + logs['worker 1']  # whichever stopped first says it
    assert not cluster.running()
    assert result == code, logs
    assert elapsed < (KILL_BOUND_SECS if fault == 'kill' else HANG_BOUND_SECS), elapsed
    where, pattern = line
    pattern = pattern.format(ps=re.escape(cluster.address('ps 0')),
                             worker=re.escape(cluster.address('worker 1')))
    assert any(re.search(pattern, text) for text in logs[where]), logs[where][-10:]
    # No checkpoint lost: the newest one before the fault (or a newer one) is listed, and
    # every listed checkpoint loads.
    listed = checkpoint_state.listed(str(tmp_path / 'train'))
    assert _checkpoint_step(listed[-1]) >= _checkpoint_step(saved)
    assert [checkpoint_state.load_problem(prefix) for prefix in listed] == [None] * len(listed)

