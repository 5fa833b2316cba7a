"""The cluster of a distributed training run: its tasks, and which one this process is.

The description comes from the `TF_CONFIG` environment variable, the JSON that Kubeflow's
TFJob and TensorFlow's cluster resolvers write::

    {"cluster": {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"], "ps": ["p0:2222"],
                 "evaluator": ["e:2222"]},
     "task": {"type": "worker", "index": 0}}

or from the flags `--ps_hosts`, `--worker_hosts`, `--job_name`, `--task`, each of which
replaces its part of TF_CONFIG (flags win). With neither, there is no cluster and training
is the single-machine run.

Roles: `ps` tasks hold the variables; `chief` (else worker 0) initialises, restores and
alone writes checkpoints and summaries; the workers (chief included, as replica 0) train;
an `evaluator` evaluates the chief's checkpoints and is not part of the training cluster
(TFJob leaves it out of the other replicas' TF_CONFIG). The legacy job name `master`
means `chief`.

This module needs only the standard library: the launcher imports it without TensorFlow.
"""
import collections
import json
import socket
import time

from common import cli

TF_CONFIG = 'TF_CONFIG'
CHIEF = 'chief'
WORKER = 'worker'
PS = 'ps'
EVALUATOR = 'evaluator'
JOBS = (CHIEF, WORKER, PS, EVALUATOR)
TRAINING_JOBS = (CHIEF, WORKER, PS)
_ALIASES = {'master': CHIEF}
DEFAULT_WAIT_SECS = 300
DEFAULT_OPERATION_SECS = 300


class ClusterError(ValueError):
    """A cluster description that cannot work; the message names the variable or flag."""


class HostUnreachableError(RuntimeError):
    """A task of the cluster did not answer within the wait; the message names its address."""


Task = collections.namedtuple('Task', ['job', 'index', 'address'])
"""One task of the cluster: job name, index in the job, 'host:port'."""


class Cluster:
    """The tasks of a cluster and the role of this process.

    Args:
        jobs: dict job name -> list of 'host:port' (JOBS only).
        task_type: this task's job.
        task_index: this task's index in its job.
    """

    def __init__(self, jobs, task_type, task_index):
        self.jobs = {job: tuple(hosts) for job, hosts in jobs.items() if hosts}
        self.task_type = task_type
        self.task_index = task_index

    def __repr__(self):
        return 'Cluster(%r, %r, %d)' % (self.jobs, self.task_type, self.task_index)

    @property
    def num_ps(self):
        """Parameter-server tasks."""
        return len(self.jobs.get(PS, ()))

    @property
    def num_replicas(self):
        """Training replicas: the chief (if any) and the workers."""
        return len(self.jobs.get(CHIEF, ())) + len(self.jobs.get(WORKER, ()))

    @property
    def is_chief(self):
        """This task initialises, restores and saves: `chief`, else worker 0."""
        if self.task_type == CHIEF:
            return True
        return self.task_type == WORKER and self.task_index == 0 and CHIEF not in self.jobs

    @property
    def is_replica(self):
        """This task trains (chief or worker)."""
        return self.task_type in (CHIEF, WORKER)

    @property
    def replica_id(self):
        """Index of this replica among all replicas: the chief is 0, then the workers."""
        if self.task_type == CHIEF:
            return 0
        return len(self.jobs.get(CHIEF, ())) + self.task_index

    @property
    def task_name(self):
        """'worker 1', 'ps 0', ..."""
        return '%s %d' % (self.task_type, self.task_index)

    def training_jobs(self):
        """dict job -> hosts of the training cluster (tf.train.ClusterSpec), no evaluator."""
        return {job: list(hosts) for job, hosts in self.jobs.items() if job in TRAINING_JOBS}

    def tasks(self, jobs=TRAINING_JOBS):
        """Every Task of the given jobs, chief first, then workers, then ps."""
        return [Task(job, index, address) for job in jobs
                for index, address in enumerate(self.jobs.get(job, ()))]

    def peers(self):
        """The other tasks of the training cluster (what this task waits for)."""
        return [task for task in self.tasks()
                if (task.job, task.index) != (self.task_type, self.task_index)]

    def device_filters(self):
        """The devices a replica's session uses: all ps tasks and its own task only, so one
        worker neither waits for nor fails with another."""
        return ['/job:%s' % PS, '/job:%s/task:%d' % (self.task_type, self.task_index)]


def _check_address(address, where):
    """'host:port' with a port in [1, 65535]."""
    if not isinstance(address, str):
        raise ClusterError('%s: expected "host:port", got %r' % (where, address))
    host, _, port = address.strip().rpartition(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError('%s: expected "host:port", got %r' % (where, address))
    return address.strip()


def _check_hosts(hosts, where):
    if not isinstance(hosts, list) or not hosts:
        raise ClusterError('%s must be a non-empty list of "host:port", got %r' % (where, hosts))
    return [_check_address(address, '%s[%d]' % (where, i)) for i, address in enumerate(hosts)]


def _job_name(name, where):
    name = _ALIASES.get(name, name)
    if name not in JOBS:
        raise ClusterError('%s: unknown job %r (expected one of %s)'
                           % (where, name, ', '.join(JOBS)))
    return name


def parse_tf_config(text):
    """The cluster and task of a TF_CONFIG value.

    Args:
        text: the JSON string.

    Returns:
        (jobs dict job -> list of addresses, task type or None, task index or None).

    Raises:
        ClusterError: naming TF_CONFIG and the field.
    """
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ClusterError('%s is not valid JSON (%s): %.200r' % (TF_CONFIG, error, text)) from None
    if not isinstance(config, dict):
        raise ClusterError('%s must be a JSON object, got %.200r' % (TF_CONFIG, text))
    cluster = config.get('cluster', {})
    if not isinstance(cluster, dict):
        raise ClusterError('%s "cluster" must be an object of job -> ["host:port", ...], got %r'
                           % (TF_CONFIG, cluster))
    jobs = {}
    for name, hosts in cluster.items():
        where = '%s cluster.%s' % (TF_CONFIG, name)
        jobs[_job_name(name, where)] = _check_hosts(hosts, where)
    task = config.get('task', {})
    if not isinstance(task, dict):
        raise ClusterError('%s "task" must be an object {"type": ..., "index": ...}, got %r'
                           % (TF_CONFIG, task))
    task_type = task.get('type')
    if task_type is not None:
        task_type = _job_name(task_type, '%s task.type' % TF_CONFIG)
    index = task.get('index', 0 if task_type else None)
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise ClusterError('%s task.index must be an integer >= 0, got %r' % (TF_CONFIG, index))
    return jobs, task_type, index


def _hosts_flag(text, flag):
    hosts = [h.strip() for h in text.split(',') if h.strip()]
    return _check_hosts(hosts, flag)


def resolve(environ, ps_hosts=None, worker_hosts=None, job_name=None, task=None):
    """The Cluster of TF_CONFIG and the flags (flags win), or None for a single machine.

    Args:
        environ: the environment (TF_CONFIG is read from it).
        ps_hosts, worker_hosts: comma-separated 'host:port' lists (--ps_hosts, --worker_hosts).
        job_name: --job_name (chief, worker, ps, evaluator).
        task: --task (index in the job).

    Raises:
        ClusterError: a malformed description, a task outside the cluster, ...; the message
            names the variable or flag the wrong value came from.
    """
    jobs, task_type, index = {}, None, None
    source = {'type': TF_CONFIG + ' task.type', 'index': TF_CONFIG + ' task.index'}
    text = environ.get(TF_CONFIG, '').strip()
    if text:
        jobs, task_type, index = parse_tf_config(text)
    if ps_hosts:
        jobs[PS] = _hosts_flag(ps_hosts, '--ps_hosts')
    if worker_hosts:
        jobs[WORKER] = _hosts_flag(worker_hosts, '--worker_hosts')
    if job_name:
        task_type, source['type'] = _job_name(job_name, '--job_name'), '--job_name'
    if not jobs:
        if job_name:
            raise ClusterError('--job_name needs a cluster: --ps_hosts/--worker_hosts or %s'
                               % TF_CONFIG)
        return None
    if task is not None:
        index, source['index'] = task, '--task'
    if task_type is None:
        raise ClusterError('the cluster does not say which task this is: set %s task.type or '
                           '--job_name' % TF_CONFIG)
    index = 0 if index is None else index
    return _validated(jobs, task_type, index, source)


def _validated(jobs, task_type, index, source):
    if len(jobs.get(CHIEF, ())) > 1:
        raise ClusterError('a cluster has at most one chief, got %d: %s'
                           % (len(jobs[CHIEF]), ', '.join(jobs[CHIEF])))
    if not jobs.get(CHIEF) and not jobs.get(WORKER):
        raise ClusterError('the cluster has no chief and no worker (%s): nobody trains'
                           % ', '.join(sorted(jobs)))
    if task_type not in jobs and task_type != EVALUATOR:
        raise ClusterError('%s is %r but the cluster has no %r job (jobs: %s)'
                           % (source['type'], task_type, task_type, ', '.join(sorted(jobs))))
    size = len(jobs.get(task_type, ()))
    if index < 0 or (task_type in jobs and index >= size):
        raise ClusterError('%s %d is outside the cluster: job %r has %d task%s (0 to %d)'
                           % (source['index'], index, task_type, size, 's' if size > 1 else '',
                              size - 1))
    seen = {}
    for job, hosts in jobs.items():
        for i, address in enumerate(hosts):
            if address in seen:
                raise ClusterError('address %s is given to both %s and %s %d'
                                   % (address, seen[address], job, i))
            seen[address] = '%s %d' % (job, i)
    result = Cluster(jobs, task_type, index)
    if result.num_replicas > 1 and not result.num_ps:
        raise ClusterError('a cluster of %d replicas needs ps tasks to hold the variables '
                           '(%s cluster.ps or --ps_hosts)' % (result.num_replicas, TF_CONFIG))
    return result


def check_training_flags(cluster, sync_replicas, replicas_to_aggregate, worker_replicas,
                         num_ps_tasks, master):
    """Checks the training flags that must agree with the cluster (None: no cluster).

    Raises:
        ClusterError: naming the flag.
    """
    if cluster is None:
        if sync_replicas:
            raise ClusterError('--sync_replicas needs a cluster of workers and ps tasks '
                               '(%s or --ps_hosts/--worker_hosts)' % TF_CONFIG)
        if replicas_to_aggregate is not None:
            raise ClusterError('--replicas_to_aggregate needs --sync_replicas')
        return
    if replicas_to_aggregate is not None and not sync_replicas:
        raise ClusterError('--replicas_to_aggregate needs --sync_replicas')
    if replicas_to_aggregate is not None and replicas_to_aggregate < 1:
        raise ClusterError('--replicas_to_aggregate must be >= 1, got %d' % replicas_to_aggregate)
    if sync_replicas and not cluster.num_ps:
        raise ClusterError('--sync_replicas needs ps tasks (%s cluster.ps or --ps_hosts): '
                           'with %d replica and no ps there is nothing to synchronise'
                           % (TF_CONFIG, cluster.num_replicas))
    if master:
        raise ClusterError('--master is the task\'s own server in a cluster; leave it unset')
    for flag, value, expected in (('--worker_replicas', worker_replicas, cluster.num_replicas),
                                  ('--num_ps_tasks', num_ps_tasks, cluster.num_ps)):
        if value is not None and value != expected:
            raise ClusterError('%s=%d disagrees with the cluster, which has %d; leave it unset'
                               % (flag, value, expected))


def add_flags(parser, ps_strategies):
    """The cluster flags of the trainer (its --task is the deployment group's).

    Args:
        parser: argparse parser.
        ps_strategies: names of the variable placements (model_deploy.PS_STRATEGIES).
    """
    group = parser.add_argument_group(
        'cluster', 'TF_CONFIG (as Kubeflow\'s TFJob writes it) or these flags; flags win')
    group.add_argument('--ps_hosts', default=None,
                       help='parameter servers, comma separated host:port')
    group.add_argument('--worker_hosts', default=None,
                       help='workers, comma separated host:port (worker 0 is the chief when '
                       'there is no chief task)')
    group.add_argument('--job_name', default=None, choices=JOBS, help='this task\'s job')
    cli.add_bool(group, 'sync_replicas', False,
                 'average the gradients of --replicas_to_aggregate replicas into one update '
                 '(SyncReplicasOptimizer); else each worker updates on its own')
    group.add_argument('--replicas_to_aggregate', type=int, default=None,
                       help='gradients per synchronous update (default: every replica)')
    group.add_argument('--ps_strategy', default='round_robin', choices=ps_strategies,
                       help='variables over the ps tasks: in turn, or by size (default '
                       '%(default)s)')
    group.add_argument('--cluster_wait_secs', type=int, default=DEFAULT_WAIT_SECS,
                       help='how long to wait for the other tasks to answer (default '
                       '%(default)s)')
    group.add_argument('--operation_timeout_secs', type=int, default=DEFAULT_OPERATION_SECS,
                       help='longest a training step, or creating or closing a session, may '
                       'take before the task stops, naming the tasks that do not answer '
                       '(default %(default)s)')
    group.add_argument('--eval_dataset_name', default=None,
                       help='data set(s) the evaluator task evaluates (default --dataset_name)')
    group.add_argument('--eval_split_name', default='test',
                       help='split the evaluator task evaluates (default %(default)s)')
    group.add_argument('--eval_dir', default=None,
                       help='output of the evaluator task (default TRAIN_DIR/eval)')
    return group


def answers(address, timeout=1.0):
    """True when a TCP connection to 'host:port' opens now."""
    host, _, port = address.rpartition(':')
    try:
        with socket.create_connection((host.strip('[]'), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_tasks(tasks, timeout_secs, poll_secs=0.5, log=None):
    """Waits until every task's address accepts TCP connections (its server is up).

    Args:
        tasks: list of Task.
        timeout_secs: the bounded wait.
        poll_secs: seconds between two rounds.
        log: fn(message) told once which tasks are still awaited, or None.

    Raises:
        HostUnreachableError: naming the tasks and addresses that never answered.
    """
    deadline = time.monotonic() + timeout_secs
    waiting = list(tasks)
    told = False
    while True:
        waiting = [task for task in waiting if not answers(task.address)]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise HostUnreachableError(
                'no answer from %s after %g s (--cluster_wait_secs): is the task started and '
                'the address right?' % (', '.join('%s %d at %s' % t for t in waiting),
                                        timeout_secs))
        if log is not None and not told:
            log('waiting up to %g s for %s' % (timeout_secs,
                                              ', '.join('%s %d at %s' % t for t in waiting)))
            told = True
        time.sleep(poll_secs)
