"""TensorFlow's distributed runtime for a `cluster.Cluster`: servers, sessions, the ps loop.

Every task of the training cluster runs a `tf.compat.v1.train.Server` (gRPC) on its
address. A ps task only serves (`serve`); a replica builds its graph with the variables on
`/job:ps` (model_deploy) and runs it in a session on its own server (`server.target`),
seeing only the ps tasks and itself (`session_config`'s device filters).

`monitored_session` is MonitoredTrainingSession's chief/worker split (the chief
initialises or restores and saves checkpoints; the others wait until the model is ready),
with the differences a cluster needs: every session (re)creation first waits, bounded, for
the ps tasks, a worker checks readiness every `recovery_wait_secs` (1 s, not 30 s), and
with a watchdog.Watchdog creating a session is bounded too. MonitoredSession recreates the
session after AbortedError / UnavailableError (a ps task restarted), so training continues
from the chief's last checkpoint.
"""
import ipaddress
import logging
import signal
import socket
import threading

import tensorflow as tf

from common import devices
from deployment import cluster as cluster_lib
from deployment import watchdog as watchdog_lib

RECOVERY_WAIT_SECS = 1.0
STOP_GRACE_SECS = 3.0
"""How long closing a session waits for its queue-runner threads (a synchronous chief's one
waits for gradients that will not come; MonitoredSession's default is 120 s)."""


def server_config(num_cpu_devices=None):
    """ConfigProto of a task's server: soft placement, and `num_cpu_devices` CPU devices
    (one per clone with --clone_on_cpu) if given."""
    config = devices.without_absent_gpus(tf.compat.v1.ConfigProto(allow_soft_placement=True))
    if num_cpu_devices:
        config.device_count['CPU'] = num_cpu_devices
    return config


def exposure_warning(address, interfaces):
    """A warning when a task's address is on loopback but its server is reachable from other
    networks, else None.

    TensorFlow's server listens on every interface of its network namespace, whatever host
    the cluster spec gives it, and has no authentication.

    Args:
        address: the task's 'host:port' in the cluster spec.
        interfaces: names of the network interfaces of this process (socket.if_nameindex()).
    """
    host, _, port = address.rpartition(':')
    host = host.strip('[]')
    try:
        loopback = host == 'localhost' or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    others = [name for name in interfaces if name != 'lo']
    if not loopback or not others:
        return None
    return ('the cluster gives this task %s, but TensorFlow\'s server listens on port %s of '
            'every interface (%s) and has no authentication: keep this machine\'s network '
            'private, or start the cluster with python -m deployment.local_cluster (a network '
            'of its own)' % (address, port, ', '.join(others)))


def start_server(cluster, config=None):
    """Starts this task's gRPC server on its address of the cluster (logging
    exposure_warning when that address is on loopback but other networks reach it).

    Args:
        cluster: cluster.Cluster of a ps, chief or worker task.
        config: ConfigProto of the server's devices (server_config).

    Returns:
        tf.compat.v1.train.Server (its `target` is the session target of a replica).
    """
    spec = tf.train.ClusterSpec(cluster.training_jobs())
    server = tf.compat.v1.train.Server(spec, job_name=cluster.task_type,
                                       task_index=cluster.task_index, protocol='grpc',
                                       config=config, start=True)
    warning = exposure_warning(cluster.jobs[cluster.task_type][cluster.task_index],
                               [name for _, name in socket.if_nameindex()])
    if warning:
        logging.warning('%s: %s', cluster.task_name, warning)
    return server


def session_config(cluster, config=None, operation_timeout_secs=None):
    """A copy of `config` whose sessions see only the ps tasks and this task, and whose
    operations (runs) fail with DeadlineExceededError after `operation_timeout_secs`.

    Without the filters, a session waits for every task of the cluster, and one
    worker that is down stops all of them.
    """
    result = tf.compat.v1.ConfigProto()
    if config is not None:
        result.CopyFrom(config)
    del result.device_filters[:]
    result.device_filters.extend(cluster.device_filters())
    if operation_timeout_secs:
        result.operation_timeout_in_ms = int(operation_timeout_secs * 1000)
    return result


def serve(cluster, config=None, signals=(signal.SIGTERM, signal.SIGINT), poll_secs=0.5):
    """Runs this ps task's server until one of `signals` arrives; returns the signal number.

    `Server.join()` blocks inside TensorFlow's C++ code, where Python signal handlers never
    run, so the loop waits on an event the handlers set. Both signals are handled
    explicitly: a process started in the background by a non-interactive shell ignores
    SIGINT by default.
    """
    stopped = threading.Event()
    received = []

    def handler(signum, _frame):
        received.append(signum)
        stopped.set()

    for signum in signals:
        signal.signal(signum, handler)
    server = start_server(cluster, config)
    logging.info('%s serving on %s (%s)', cluster.task_name,
                 cluster.jobs[cluster.task_type][cluster.task_index], server.target)
    while not stopped.wait(poll_secs):
        pass
    logging.info('%s stopping on signal %d', cluster.task_name, received[0])
    return received[0]


class StopAtGlobalStepHook(tf.compat.v1.train.SessionRunHook):
    """Requests a stop once the global step, read after each run, reaches `last_step`.

    TensorFlow's StopAtStepHook looks at the global step read during the run. In a cluster
    the other replicas' updates land while a run waits for its token, so that value can be
    several steps behind: the replica would start one more step after the last, which no
    other replica helps to complete (a synchronous update needs their gradients), and wait
    for ever.

    Args:
        last_step: the global step at which training ends.
    """

    def __init__(self, last_step):
        self._last_step = last_step
        self._global_step = None

    def begin(self):
        self._global_step = tf.compat.v1.train.get_global_step()
        if self._global_step is None:
            raise RuntimeError('StopAtGlobalStepHook needs a global step in the graph')

    def after_run(self, run_context, run_values):
        if run_context.session.run(self._global_step) >= self._last_step:
            run_context.request_stop()


class _WaitingChiefSessionCreator(tf.compat.v1.train.ChiefSessionCreator):
    """Waits for the ps tasks before each session, then restores the checkpoint that
    `choose_checkpoint(checkpoint_dir)` names, or initialises when it names none; creating
    the session is bounded by `watchdog` (`operation_timeout_secs`)."""

    def __init__(self, wait_for, wait_secs, checkpoint_dir, choose_checkpoint, watchdog,
                 operation_timeout_secs, **kwargs):
        super().__init__(**kwargs)
        self._wait_for = wait_for
        self._wait_secs = wait_secs
        self._train_dir = checkpoint_dir
        self._choose_checkpoint = choose_checkpoint
        self._watchdog = watchdog
        self._operation_timeout_secs = operation_timeout_secs

    def create_session(self):
        # The wait for the ps tasks ends itself after wait_secs; the bound is for the rest.
        with watchdog_lib.bounded(
                self._watchdog, 'Creating the session',
                self._operation_timeout_secs and (
                    self._wait_secs + self._operation_timeout_secs)):
            cluster_lib.wait_for_tasks(self._wait_for, self._wait_secs, log=logging.info)
            self._scaffold.finalize()
            path, managed = None, []
            if self._train_dir and self._choose_checkpoint is not None:
                path, managed = self._choose_checkpoint(self._train_dir)
            session = self._get_session_manager().prepare_session(
                self._master, saver=self._scaffold.saver, checkpoint_filename_with_path=path,
                config=self._config, init_op=self._scaffold.init_op,
                init_feed_dict=self._scaffold.init_feed_dict, init_fn=self._scaffold.init_fn)
        if path:
            # The saver's max_to_keep counts these, and its `checkpoint` file lists them.
            self._scaffold.saver.recover_last_checkpoints(managed)
        return session


class _WaitingWorkerSessionCreator(tf.compat.v1.train.WorkerSessionCreator):
    """Waits for the ps tasks, then for the chief's initialisation, checking every
    `recovery_wait_secs`; a clear error after `wait_secs`. With a watchdog, the wait for the
    chief is bounded even when a session cannot be created (a hung ps)."""

    def __init__(self, wait_for, wait_secs, recovery_wait_secs, watchdog,
                 operation_timeout_secs, **kwargs):
        super().__init__(max_wait_secs=wait_secs, **kwargs)
        self._wait_for = wait_for
        self._wait_secs = wait_secs
        self._recovery_wait_secs = recovery_wait_secs
        self._watchdog = watchdog
        self._operation_timeout_secs = operation_timeout_secs

    def _get_session_manager(self):
        if self._session_manager is None:
            scaffold = self._scaffold
            self._session_manager = tf.compat.v1.train.SessionManager(
                local_init_op=scaffold.local_init_op,
                local_init_feed_dict=scaffold.local_init_feed_dict,
                ready_op=scaffold.ready_op,
                ready_for_local_init_op=scaffold.ready_for_local_init_op,
                graph=tf.compat.v1.get_default_graph(),
                recovery_wait_secs=self._recovery_wait_secs)
        return self._session_manager

    def create_session(self):
        # Both waits end themselves after wait_secs; the bound is for a session that cannot
        # be created (a hung ps).
        try:
            with watchdog_lib.bounded(
                    self._watchdog, 'Waiting for the chief to initialise the model',
                    self._operation_timeout_secs and (
                        2 * self._wait_secs + self._operation_timeout_secs)):
                cluster_lib.wait_for_tasks(self._wait_for, self._wait_secs, log=logging.info)
                return super().create_session()
        except tf.errors.DeadlineExceededError:
            raise cluster_lib.HostUnreachableError(
                'the chief did not initialise the model within %g s (--cluster_wait_secs); '
                'is the chief task running?' % self._wait_secs) from None


def monitored_session(master='', is_chief=True, checkpoint_dir=None, scaffold=None, hooks=(),
                      chief_only_hooks=(), save_checkpoint_secs=None, save_checkpoint_steps=None,
                      config=None, wait_for=(), wait_secs=cluster_lib.DEFAULT_WAIT_SECS,
                      recovery_wait_secs=RECOVERY_WAIT_SECS, choose_checkpoint=None,
                      watchdog=None, operation_timeout_secs=None):
    """A MonitoredSession of one replica (or of a single machine: master '', is_chief).

    Args:
        master: session target ('' in-process, else the task's `server.target`).
        is_chief: initialise or restore (the checkpoint `choose_checkpoint` names, else
            scaffold.init_fn) and save checkpoints; the other replicas wait until the model
            is ready.
        checkpoint_dir: train_dir (restored from and saved to by the chief).
        scaffold: tf.compat.v1.train.Scaffold.
        hooks: hooks of every replica.
        chief_only_hooks: hooks of the chief only (summaries).
        save_checkpoint_secs, save_checkpoint_steps: the chief's checkpoint period.
        config: session ConfigProto.
        wait_for: cluster.Task list waited for before each session (re)creation.
        wait_secs: bound of each wait (and of a worker's wait for the chief).
        recovery_wait_secs: seconds between a worker's readiness checks.
        choose_checkpoint: fn(checkpoint_dir) -> (checkpoint prefix to restore or None, the
            prefixes of checkpoint_dir the saver keeps managing, oldest first); called at
            each session (re)creation of the chief (None: never restore).
        watchdog: watchdog.Watchdog bounding each session creation to `wait_secs` +
            `operation_timeout_secs` (a worker's, which also waits for the chief, to
            `wait_secs` more), or None.
        operation_timeout_secs: that bound.

    Returns:
        tf.compat.v1.train.MonitoredSession.
    """
    scaffold = scaffold or tf.compat.v1.train.Scaffold()
    if not is_chief:
        creator = _WaitingWorkerSessionCreator(wait_for, wait_secs, recovery_wait_secs,
                                               watchdog, operation_timeout_secs,
                                               scaffold=scaffold, master=master, config=config)
        return tf.compat.v1.train.MonitoredSession(session_creator=creator, hooks=list(hooks),
                                                   stop_grace_period_secs=STOP_GRACE_SECS)
    all_hooks = list(chief_only_hooks)
    if checkpoint_dir and (save_checkpoint_secs or save_checkpoint_steps):
        all_hooks.append(tf.compat.v1.train.CheckpointSaverHook(
            checkpoint_dir, save_secs=save_checkpoint_secs, save_steps=save_checkpoint_steps,
            scaffold=scaffold))
    creator = _WaitingChiefSessionCreator(wait_for, wait_secs, checkpoint_dir,
                                          choose_checkpoint, watchdog, operation_timeout_secs,
                                          scaffold=scaffold, master=master, config=config)
    return tf.compat.v1.train.MonitoredSession(session_creator=creator,
                                               hooks=all_hooks + list(hooks),
                                               stop_grace_period_secs=STOP_GRACE_SECS)
