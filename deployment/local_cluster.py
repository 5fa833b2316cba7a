"""Runs a training cluster on this machine: every task of train_ssd_network.py on 127.0.0.1.

    python -m deployment.local_cluster --num_ps=1 --num_workers=2 [--chief] [--evaluator] -- \\
        --dataset_dir=DATA --train_dir=TRAIN --model_name=ssd_300_mobilenet_v2 \\
        --batch_size=8 --sync_replicas --max_number_of_steps=1000

Each task gets a free port and its TF_CONFIG, as Kubeflow's TFJob would give it; the flags
after `--` go to every task. The tasks run in a network of their own with only loopback
(private_network.py), so their servers, which listen on every interface, are reachable from
the cluster's processes only (--host_network: this machine's network). Their output is
merged line by line, each line prefixed with the task (`worker 1| ...`). Ctrl-C or SIGTERM
stops every task (SIGTERM, then SIGKILL after --stop_secs). When the chief (the `chief` task
with --chief, else worker 0) ends, the other workers get --grace_secs to finish; then the
evaluator gets --eval_finish_secs to evaluate the train dir's last checkpoint (so that its
metrics.json is for the last step), and every task is stopped. The exit code is the chief's.
When a ps task or a worker ends before the chief (killed, failed), no step can complete any
more: every task is stopped at once, a `launcher |` line names the lost task, and the exit
code is that task's.

`LocalCluster` is the same launcher as a library: the tests start, kill and restart
single tasks with it. Standard library only (no TensorFlow in this process).
"""
import argparse
import collections
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from common import ports
from deployment import cluster as cluster_lib
from deployment import private_network as network_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(ROOT, 'train_ssd_network.py')
LAUNCHER = 'launcher'
HOST = '127.0.0.1'
# In front of a task's command line (Linux): SIGTERM to the task when the launcher dies, so no
# task outlives it, even after SIGKILL; then exec the task. It runs in the fresh process, not
# between fork and exec: a preexec function would make subprocess fork this (multithreaded)
# process and run gRPC's fork handlers in the child, which can abort it.
_DIE_WITH_PARENT = r'''
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit('the launcher ended before the task started')
os.execvp(sys.argv[2], sys.argv[2:])
'''


def _die_with_parent(argv):
    """`argv` behind _DIE_WITH_PARENT where the kernel has prctl, else `argv` itself."""
    try:
        ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return list(argv)
    return [sys.executable, '-c', _DIE_WITH_PARENT, str(os.getpid())] + list(argv)


def last_checkpoint(train_dir):
    """The name of the newest checkpoint of a train dir ('model.ckpt-600'), or None.

    Reads the `checkpoint` state file TensorFlow's Saver writes (no TensorFlow import).
    """
    try:
        with open(os.path.join(train_dir, 'checkpoint'), encoding='utf-8') as state:
            match = re.search(r'^model_checkpoint_path: "(.*)"$', state.read(), re.M)
    except OSError:
        return None
    return os.path.basename(match.group(1)) if match else None


def train_dir_of(train_flags):
    """The --train_dir of the trainer's flags, or None."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--train_dir')
    return parser.parse_known_args(train_flags)[0].train_dir


def exit_code(returncode):
    """A shell-style exit code: 128 + N for a task ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode):
    """'exited with code 1', 'was killed by signal 9 (SIGKILL)'."""
    if returncode >= 0:
        return 'exited with code %d' % returncode
    try:
        name = ' (%s)' % signal.Signals(-returncode).name
    except ValueError:
        name = ''
    return 'was killed by signal %d%s' % (-returncode, name)


TaskSpec = collections.namedtuple('TaskSpec', ['name', 'job', 'index', 'tf_config'])
"""A task of the local cluster: 'worker 1', its job and index, its TF_CONFIG JSON."""


class LocalCluster:
    """The processes of a cluster on one machine.

    Args:
        train_flags: flags of train_ssd_network.py for every task.
        num_ps: parameter-server tasks.
        num_workers: worker tasks.
        chief: add a `chief` task (else worker 0 is the chief).
        evaluator: add an `evaluator` task.
        output: stream of the merged, prefixed log lines (None: keep them in memory only).
        env: base environment of the tasks (default: this one).
        script: the trainer.
        private_network: run the tasks in a network of their own with only loopback
            (private_network.PrivateNetwork), so that their servers, which listen on every
            interface, are reachable from the cluster's processes only; else (or where the
            kernel does not allow it, said in a `launcher |` line) on this machine's network.

    Every task's address is on 127.0.0.1.
    """

    def __init__(self, train_flags, num_ps=1, num_workers=2, chief=False, evaluator=False,
                 output=sys.stdout, env=None, script=TRAIN_SCRIPT, private_network=True):
        if num_workers < 0 or num_ps < 0 or not (chief or num_workers):
            raise ValueError('a cluster needs a chief or at least one worker')
        host = HOST
        jobs = collections.OrderedDict()
        if chief:
            jobs[cluster_lib.CHIEF] = ['%s:%d' % (host, ports.free_port(host))]
        for job, count in ((cluster_lib.WORKER, num_workers), (cluster_lib.PS, num_ps)):
            if count:
                jobs[job] = ['%s:%d' % (host, ports.free_port(host)) for _ in range(count)]
        self.jobs = dict(jobs)
        self.tasks = collections.OrderedDict()
        for job, hosts in jobs.items():
            for index in range(len(hosts)):
                self._add(job, index)
        if evaluator:
            self._add(cluster_lib.EVALUATOR, 0)
        self.chief = '%s 0' % (cluster_lib.CHIEF if chief else cluster_lib.WORKER)
        self._flags = list(train_flags)
        self._output = output
        self._env = dict(os.environ if env is None else env)
        self._script = script
        self._processes = {}
        self._logs = collections.defaultdict(list)
        self._pumps = {}
        self._changed = threading.Condition()
        self._private = private_network
        self._network = network_lib.PrivateNetwork()

    def _add(self, job, index):
        name = '%s %d' % (job, index)
        config = {'cluster': self.jobs, 'task': {'type': job, 'index': index}}
        self.tasks[name] = TaskSpec(name, job, index, json.dumps(config))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop_all()

    def address(self, name):
        """'host:port' of a training task."""
        spec = self.tasks[name]
        return self.jobs[spec.job][spec.index]

    @property
    def network(self):
        """The private_network.PrivateNetwork of the tasks (inactive on this machine's
        network): a tool that reads their connections runs in it."""
        return self._network

    def _start_network(self):
        """Creates the private network before the first task (again after stop_all)."""
        if not self._private or self._network.active:
            return
        problem = self._network.start()
        if problem:
            self._private = False
            self._note('no private network for the tasks (%s): their servers listen on every '
                       'interface of this machine, without authentication; keep it on a '
                       'private network' % problem)

    def start(self, name=None):
        """Starts one task by name ('worker 1'), or every task."""
        self._start_network()
        for spec in ([self.tasks[name]] if name else list(self.tasks.values())):
            process = self._processes.get(spec.name)
            if process is not None and process.poll() is None:
                raise RuntimeError('%s is already running (pid %d)' % (spec.name, process.pid))
            env = dict(self._env, TF_CONFIG=spec.tf_config, PYTHONUNBUFFERED='1')
            process = subprocess.Popen(
                _die_with_parent(self._network.command([sys.executable, self._script]
                                                       + self._flags)),
                cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, errors='replace', start_new_session=True,
                pass_fds=self._network.fds)
            with self._changed:
                self._processes[spec.name] = process
                self._log(spec.name, 'started (pid %d) with TF_CONFIG=%s'
                          % (process.pid, spec.tf_config))
            pump = threading.Thread(target=self._pump, args=(spec.name, process), daemon=True)
            pump.start()
            self._pumps[spec.name] = pump

    def _log(self, name, line):
        """Records a line of task `name` (caller holds self._changed) and prints it."""
        self._logs[name].append(line)
        if self._output is not None:
            self._output.write('%-9s| %s\n' % (name, line))
            self._output.flush()
        self._changed.notify_all()

    def _pump(self, name, process):
        for line in process.stdout:
            with self._changed:
                self._log(name, line.rstrip('\n'))
        code = process.wait()
        with self._changed:
            self._log(name, 'exited with code %d' % code)

    def process(self, name):
        """The subprocess.Popen of a task (None before it started)."""
        return self._processes.get(name)

    def log(self, name):
        """The lines of a task so far (all its runs)."""
        with self._changed:
            return list(self._logs[name])

    def wait_for_line(self, name, pattern, timeout, start=0):
        """Waits until a line of task `name` (from line index `start`) matches `pattern`.

        Returns:
            (re.Match, index of the line).

        Raises:
            TimeoutError: after `timeout` seconds, or when the task has exited without it.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = start
        with self._changed:
            while True:
                lines = self._logs[name]
                for index in range(checked, len(lines)):
                    match = regex.search(lines[index])
                    if match:
                        return match, index
                checked = len(lines)
                process = self._processes.get(name)
                pump = self._pumps.get(name)
                finished = process is not None and process.poll() is not None and (
                    pump is None or not pump.is_alive())
                remaining = deadline - time.monotonic()
                if finished or remaining <= 0:
                    raise TimeoutError('%s: no line matching %r %s' % (
                        name, pattern, 'before it exited' if finished else
                        'within %g s' % timeout))
                self._changed.wait(min(remaining, 1.0))

    def wait(self, name, timeout=None):
        """Waits for a task to end; returns its exit code (subprocess.TimeoutExpired)."""
        code = self._processes[name].wait(timeout)
        pump = self._pumps.get(name)
        if pump is not None:
            pump.join(timeout)
        return code

    def signal(self, name, signum):
        """Sends `signum` to a running task (by pid)."""
        process = self._processes.get(name)
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    def stop(self, name, timeout=10.0):
        """SIGTERM to a task, SIGKILL after `timeout` s; returns its exit code."""
        process = self._processes.get(name)
        if process is None:
            return None
        self.signal(name, signal.SIGTERM)
        try:
            return self.wait(name, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return self.wait(name)

    def kill(self, name):
        """SIGKILL to a task (a crash); returns its exit code."""
        self.signal(name, signal.SIGKILL)
        return self.wait(name)

    def restart(self, name, kill=True):
        """Ends a task (SIGKILL, or SIGTERM with kill=False) and starts it again."""
        if kill:
            self.kill(name)
        else:
            self.stop(name)
        self.start(name)

    def running(self):
        """Names of the tasks whose process is alive."""
        return [name for name, process in self._processes.items() if process.poll() is None]

    def stop_all(self, timeout=10.0):
        """SIGTERM to every running task, SIGKILL to those left after `timeout` s."""
        for name in self.running():
            self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, process in self._processes.items():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            pump = self._pumps.get(name)
            if pump is not None:
                pump.join(timeout)
        self._network.stop()

    def lost_task(self):
        """A task the training needs that has ended before the chief: (name, returncode) of a
        ps task, or of a worker that failed (a worker that finished exits with 0); or None.
        The evaluator is not needed."""
        for name, spec in self.tasks.items():
            process = self._processes.get(name)
            if name == self.chief or spec.job == cluster_lib.EVALUATOR or process is None:
                continue
            code = process.poll()
            if code is not None and (spec.job == cluster_lib.PS or code != 0):
                return name, code
        return None

    def run(self, grace_secs=30.0, stop_secs=10.0, poll_secs=0.5, eval_finish_secs=600.0):
        """Waits for the chief; then gives the other workers `grace_secs` to finish and the
        evaluator `eval_finish_secs` to evaluate the last checkpoint (finish_evaluation), and
        stops every task. Returns the chief's exit code (shell style).

        Every task is watched meanwhile: when a ps task or a worker ends before the chief
        (lost_task), no step can complete any more, so every task is stopped at once and
        the lost task's exit code is returned (1 for a ps stopped with exit 0)."""
        chief = self._processes[self.chief]
        while chief.poll() is None:
            lost = self.lost_task()
            if lost is not None:
                name, code = lost
                self._note('%s %s while the chief trains; the job cannot go on: stopping every '
                           'task' % (name, describe_exit(code)))
                self.stop_all(stop_secs)
                return exit_code(code) or 1
            time.sleep(poll_secs)
        deadline = time.monotonic() + grace_secs
        replicas = [name for name, spec in self.tasks.items()
                    if spec.job in (cluster_lib.CHIEF, cluster_lib.WORKER)]
        while any(name in self.running() for name in replicas) and time.monotonic() < deadline:
            time.sleep(poll_secs)
        self.finish_evaluation(eval_finish_secs)
        self.stop_all(stop_secs)
        if chief.returncode:
            self._note('the chief (%s) %s' % (self.chief, describe_exit(chief.returncode)))
        return exit_code(chief.returncode)

    def _note(self, line):
        """A line of the launcher itself in the merged output."""
        with self._changed:
            self._log(LAUNCHER, line)

    def finish_evaluation(self, timeout):
        """Waits until the running evaluator has reported the train dir's last checkpoint
        (its `Checkpoint <path> (step N)` line, printed after metrics.json is written), at
        most `timeout` seconds. Returns True when it has, False otherwise (no evaluator, no
        checkpoint, the evaluator ended or ran out of time; logged)."""
        name = '%s 0' % cluster_lib.EVALUATOR
        if name not in self.running():
            return False
        train_dir = train_dir_of(self._flags)
        checkpoint = last_checkpoint(train_dir) if train_dir else None
        if checkpoint is None:
            return False
        with self._changed:
            self._log(name, 'training ended; waiting up to %.0f s (--eval_finish_secs) for the '
                      'evaluation of %s' % (timeout, checkpoint))
        try:
            self.wait_for_line(name, r'^Checkpoint \S*\b%s \(step \d+\)$' % re.escape(checkpoint),
                               timeout)
        except TimeoutError as error:
            with self._changed:
                self._log(name, 'stopping without the evaluation of %s: %s' % (checkpoint, error))
            return False
        return True


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)
    parser.add_argument('--num_ps', type=int, default=1, help='ps tasks (default %(default)s)')
    parser.add_argument('--num_workers', type=int, default=2,
                        help='worker tasks (default %(default)s)')
    parser.add_argument('--chief', action='store_true',
                        help='a chief task besides the workers (default: worker 0 is the chief)')
    parser.add_argument('--evaluator', action='store_true',
                        help='an evaluator task (eval_ssd_network.py --wait_for_checkpoints)')
    parser.add_argument('--grace_secs', type=float, default=30.0,
                        help='time the workers get to finish after the chief (default '
                        '%(default)s)')
    parser.add_argument('--eval_finish_secs', type=float, default=600.0,
                        help='time the evaluator gets to evaluate the last checkpoint after '
                        'the training (default %(default)s)')
    parser.add_argument('--stop_secs', type=float, default=10.0,
                        help='time between SIGTERM and SIGKILL (default %(default)s)')
    parser.add_argument('--script', default=TRAIN_SCRIPT,
                        help='the program every task runs (default train_ssd_network.py)')
    parser.add_argument('--host_network', action='store_true',
                        help='run the tasks on this machine\'s network instead of a private one '
                        'with only loopback (their servers then listen on every interface)')
    parser.add_argument('train_flags', nargs=argparse.REMAINDER,
                        help='-- then the flags of train_ssd_network.py')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = args.train_flags[1:] if args.train_flags[:1] == ['--'] else args.train_flags
    if not flags:
        parser.error('give the flags of train_ssd_network.py after --')
    if args.num_ps < 0 or args.num_workers < 0 or not (args.chief or args.num_workers):
        parser.error('--num_workers must be >= 1 without --chief, and counts >= 0')
    if args.num_ps == 0 and args.num_workers + args.chief > 1:
        parser.error('%d replicas need --num_ps >= 1 (the variables live on the ps tasks)'
                     % (args.num_workers + args.chief))
    local = LocalCluster(flags, args.num_ps, args.num_workers, args.chief, args.evaluator,
                         script=args.script, private_network=not args.host_network)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    try:
        local.start()
        return local.run(args.grace_secs, args.stop_secs,
                         eval_finish_secs=args.eval_finish_secs)
    except KeyboardInterrupt:
        local.stop_all(args.stop_secs)
        chief = local.process(local.chief)
        return exit_code(chief.returncode) if chief is not None else 128 + stopping[0]


if __name__ == '__main__':
    sys.exit(main())
