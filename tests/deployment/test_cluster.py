"""Tests for deployment/cluster.py: TF_CONFIG and flags, roles, validation, waiting for hosts."""
import json
import socket
import time

import pytest

from deployment import cluster
from tests import helpers

JOBS = {'chief': ['c:2222'], 'worker': ['w0:2222', 'w1:2222'], 'ps': ['p0:2222', 'p1:2222']}


def _env(task_type, index, jobs=None):
    return {'TF_CONFIG': json.dumps({'cluster': jobs or JOBS,
                                     'task': {'type': task_type, 'index': index}})}


def test_no_tf_config_and_no_flags_is_a_single_machine():
    assert cluster.resolve({}) is None
    assert cluster.resolve({'TF_CONFIG': '  '}, task=3) is None


@pytest.mark.parametrize('task_type, index, replica_id, is_chief', [
    ('chief', 0, 0, True), ('worker', 0, 1, False), ('worker', 1, 2, False),
])
def test_roles_of_a_tfjob_cluster(task_type, index, replica_id, is_chief):
    found = cluster.resolve(_env(task_type, index))
    assert (found.num_replicas, found.num_ps) == (3, 2)
    assert (found.replica_id, found.is_chief, found.is_replica) == (replica_id, is_chief, True)
    assert found.device_filters() == ['/job:ps', '/job:%s/task:%d' % (task_type, index)]
    assert len(found.peers()) == 4


def test_without_chief_worker_0_is_the_chief():
    jobs = {'worker': ['w0:1', 'w1:1'], 'ps': ['p:1']}
    assert cluster.resolve(_env('worker', 0, jobs)).is_chief
    assert not cluster.resolve(_env('worker', 1, jobs)).is_chief
    assert cluster.resolve(_env('worker', 1, jobs)).replica_id == 1


def test_master_is_the_legacy_name_of_chief():
    jobs = {'master': ['m:1'], 'worker': ['w:1'], 'ps': ['p:1']}
    found = cluster.resolve(_env('master', 0, jobs))
    assert (found.task_type, found.is_chief) == ('chief', True)


def test_evaluator_outside_the_training_cluster():
    found = cluster.resolve(_env('evaluator', 0))
    assert (found.is_replica, found.is_chief) == (False, False)
    assert 'evaluator' not in found.training_jobs()
    with_evaluator = dict(JOBS, evaluator=['e:1'])
    assert cluster.resolve(_env('evaluator', 0, with_evaluator)).training_jobs() == JOBS


def test_ps_and_worker_tasks():
    found = cluster.resolve(_env('ps', 1))
    assert (found.task_name, found.is_replica) == ('ps 1', False)
    assert [t.address for t in found.tasks(['ps'])] == ['p0:2222', 'p1:2222']


def test_flags_build_a_cluster_and_win_over_tf_config():
    found = cluster.resolve({}, ps_hosts='p:1', worker_hosts='a:1, b:1', job_name='worker',
                            task=1)
    assert found.training_jobs() == {'ps': ['p:1'], 'worker': ['a:1', 'b:1']}
    assert (found.task_type, found.task_index, found.is_chief) == ('worker', 1, False)
    mixed = cluster.resolve(_env('worker', 0), ps_hosts='q:1', task=1)
    assert mixed.jobs['ps'] == ('q:1',)
    assert mixed.jobs['chief'] == ('c:2222',)
    assert (mixed.task_type, mixed.task_index) == ('worker', 1)
    assert cluster.resolve(_env('worker', 0), job_name='ps').task_type == 'ps'


@pytest.mark.parametrize('environ, kwargs, message', [
    ({'TF_CONFIG': '{"cluster": '}, {}, 'TF_CONFIG is not valid JSON'),
    ({'TF_CONFIG': '[1, 2]'}, {}, 'TF_CONFIG must be a JSON object'),
    ({'TF_CONFIG': '{"cluster": ["a:1"]}'}, {}, 'TF_CONFIG "cluster" must be an object'),
    ({'TF_CONFIG': '{"cluster": {"worker": "a:1"}}'}, {}, 'TF_CONFIG cluster.worker must be'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a"]}}'}, {}, r'cluster.worker\[0\]: expected'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:99999"]}}'}, {}, 'expected "host:port"'),
    ({'TF_CONFIG': '{"cluster": {"boss": ["a:1"]}}'}, {}, "cluster.boss: unknown job 'boss'"),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", '
                   '"index": "0"}}'}, {}, 'TF_CONFIG task.index must be an integer'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:1"]}, "task": {"type": "boss"}}'}, {},
     'TF_CONFIG task.type: unknown job'),
    ({'TF_CONFIG': '{"cluster": {"worker": ["a:1"]}}'}, {}, 'which task this is'),
    (_env('worker', 2), {}, 'TF_CONFIG task.index 2 is outside the cluster: job .worker. '
     'has 2 tasks'),
    (_env('worker', 0), {'task': 5}, '--task 5 is outside the cluster'),
    (_env('worker', 0, {'worker': ['a:1'], 'ps': ['p:1']}), {'job_name': 'chief'},
     "--job_name is 'chief' but the cluster has no 'chief' job"),
    ({}, {'worker_hosts': 'a:1,b:1', 'job_name': 'worker'}, 'needs ps tasks'),
    ({}, {'ps_hosts': 'p:1', 'job_name': 'ps'}, 'no chief and no worker'),
    ({}, {'ps_hosts': 'a:1', 'worker_hosts': 'a:1', 'job_name': 'ps'},
     'address a:1 is given to both'),
    ({}, {'ps_hosts': 'p:x', 'worker_hosts': 'a:1', 'job_name': 'ps'}, r'--ps_hosts\[0\]'),
    ({}, {'job_name': 'worker'}, '--job_name needs a cluster'),
    ({}, {'ps_hosts': 'p:1', 'worker_hosts': 'a:1', 'job_name': 'boss'},
     "--job_name: unknown job 'boss'"),
    (_env('chief', 0, {'chief': ['a:1', 'b:1'], 'ps': ['p:1']}), {}, 'at most one chief'),
])
def test_bad_descriptions_name_the_variable_or_flag(environ, kwargs, message):
    with pytest.raises(cluster.ClusterError, match=message):
        cluster.resolve(environ, **kwargs)


@pytest.mark.parametrize('found, kwargs, message', [
    (None, {'sync_replicas': True}, '--sync_replicas needs a cluster'),
    (None, {'replicas_to_aggregate': 2}, '--replicas_to_aggregate needs --sync_replicas'),
    (cluster.Cluster({'worker': ['a:1']}, 'worker', 0), {'sync_replicas': True},
     '--sync_replicas needs ps tasks'),
    (cluster.Cluster(JOBS, 'worker', 0), {'replicas_to_aggregate': 2},
     '--replicas_to_aggregate needs --sync_replicas'),
    (cluster.Cluster(JOBS, 'worker', 0), {'master': 'grpc://x:1'}, '--master'),
    (cluster.Cluster(JOBS, 'worker', 0), {'worker_replicas': 2},
     '--worker_replicas=2 disagrees with the cluster, which has 3'),
    (cluster.Cluster(JOBS, 'worker', 0), {'num_ps_tasks': 1}, '--num_ps_tasks=1 disagrees'),
])
def test_training_flags_must_agree_with_the_cluster(found, kwargs, message):
    arguments = dict(sync_replicas=False, replicas_to_aggregate=None, worker_replicas=None,
                     num_ps_tasks=None, master='')
    arguments.update(kwargs)
    with pytest.raises(cluster.ClusterError, match=message):
        cluster.check_training_flags(found, **arguments)


def test_training_flags_that_agree_pass():
    found = cluster.Cluster(JOBS, 'worker', 0)
    cluster.check_training_flags(found, True, 2, 3, 2, '')
    cluster.check_training_flags(None, False, None, 4, 1, 'grpc://x:1')


def test_wait_for_tasks_returns_when_every_server_answers():
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        address = '127.0.0.1:%d' % listener.getsockname()[1]
        cluster.wait_for_tasks([cluster.Task('ps', 0, address)], timeout_secs=5)
        assert cluster.answers(address)


def test_a_task_that_never_answers_is_named_after_a_bounded_wait():
    address = '127.0.0.1:%d' % helpers.free_port()
    messages = []
    start = time.monotonic()
    with pytest.raises(cluster.HostUnreachableError,
                       match=r'no answer from ps 0 at %s after 1 s \(--cluster_wait_secs\)'
                       % address):
        cluster.wait_for_tasks([cluster.Task('ps', 0, address)], timeout_secs=1,
                               poll_secs=0.1, log=messages.append)
    assert time.monotonic() - start < 10
    assert messages == ['waiting up to 1 s for ps 0 at %s' % address]
