"""Helpers shared by the tests: a toy SavedModel, random boxes, running a dataset, a script's
main() as its command line would run, a command on a pseudo-terminal, and (from the packages
that own them) the shapes data set as TFRecords, free ports and `python -m serving.model_server`
processes."""
import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import tensorflow as tf

from common import manifest, np_post_processing
from common.ports import free_port  # noqa: F401  (helpers of the tests)
from datasets.make_shapes_dataset import DATASET_NAME  # noqa: F401
from datasets.make_shapes_dataset import make_records as make_shapes_records  # noqa: F401
from export import saved_model_writer
from serving.launch import REPO, start_model_server, stop_process, wait_until_serving  # noqa: F401

TOY_HW = (4, 4)
TOY_CLASSES = ['background', 'circle', 'square']
TOY_ANCHORS = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32)


def toy_manifest(classes=None, normalization='minus_one_to_one', network='toy'):
    """The export manifest of export_toy_model, as JSON text."""
    return manifest.to_json(manifest.build(
        network, TOY_HW, normalization, len(TOY_ANCHORS), classes or TOY_CLASSES,
        np_post_processing.DEFAULTS, 'float32', '/toy/model.ckpt-1', 1))


def export_toy_model(export_base, box_scale=1.0, version=None, classes=None,
                     manifest_json=None):
    """Writes a toy SavedModel; returns the version's path.

    Signatures: serving_default images [None, 4, 4, 3] -> scores [None, 2, 3], boxes
    [None, 2, 4] (= TOY_ANCHORS * box_scale); detect encoded_images [None] -> zero detections,
    num_detections = byte length, class_names, manifest (manifest_json, default
    toy_manifest(classes); '' leaves the output out); slow iterations [] int32 -> count (a busy
    loop, to keep a request in flight); echo x [None, None] -> y = 2 x.
    """
    if manifest_json is None:
        manifest_json = toy_manifest(classes)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        images = tf.compat.v1.placeholder(tf.float32, [None, TOY_HW[0], TOY_HW[1], 3],
                                          name='images')
        weights = tf.compat.v1.get_variable('w', initializer=_toy_weights())
        scale = tf.compat.v1.get_variable('box_scale', initializer=np.float32(box_scale))
        logits = tf.reshape(tf.matmul(tf.reshape(images, [-1, 48]), weights), [-1, 2, 3])
        scores = tf.nn.softmax(logits)
        boxes = tf.tile(TOY_ANCHORS[None], [tf.shape(images)[0], 1, 1]) * scale
        encoded = tf.compat.v1.placeholder(tf.string, [None], name='encoded_images')
        lengths = tf.cast(tf.strings.length(encoded), tf.float32)
        batch = tf.shape(encoded)[0]
        iterations = tf.compat.v1.placeholder(tf.int32, [], name='iterations')
        count = tf.while_loop(lambda i: i < iterations, lambda i: i + 1, [tf.constant(0)])[0]
        values = tf.compat.v1.placeholder(tf.float32, [None, None], name='x')
        saved_model_writer.add_asset(_labels_file(os.path.dirname(export_base)))
        session.run(tf.compat.v1.global_variables_initializer())
        detections = {
            'detection_boxes': tf.zeros([batch, 2, 4]), 'detection_scores': tf.zeros([batch, 2]),
            'detection_classes': tf.zeros([batch, 2]), 'num_detections': lengths,
            'class_names': tf.tile(tf.constant(classes or TOY_CLASSES)[None], [batch, 1])}
        if manifest_json:
            detections['manifest'] = tf.fill([batch], tf.constant(manifest_json))
        predict = saved_model_writer.predict_signature
        signatures = {
            'serving_default': predict({'images': images}, {'scores': scores, 'boxes': boxes}),
            'detect': predict({'encoded_images': encoded}, detections),
            'slow': predict({'iterations': iterations}, {'count': count}),
            'echo': predict({'x': values}, {'y': values * 2.0}),
        }
        return saved_model_writer.write_saved_model(session, export_base, signatures, version)


def _toy_weights():
    return np.linspace(-1, 1, 48 * 6).reshape(48, 6).astype(np.float32)


def _labels_file(folder):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'labels.txt')
    with open(path, 'w') as f:
        f.write(''.join('%d:%s\n' % item for item in enumerate(TOY_CLASSES)))
    return path


def toy_outputs(images, box_scale=1.0):
    """numpy reference of the toy serving_default."""
    logits = (images.reshape(-1, 48) @ _toy_weights()).reshape(-1, 2, 3)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    boxes = np.tile(TOY_ANCHORS[None], [len(images), 1, 1]) * box_scale
    return exp / exp.sum(-1, keepdims=True), boxes


def run_main(main, argv, capsys):
    """Runs a script's main(argv) in this process as `python script.py argv` would end.

    Returns (exit status, stderr): `sys.exit(message)` is status 1 with the message on stderr,
    as the interpreter prints it; argparse errors are status 2.
    """
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    err = capsys.readouterr().err
    if isinstance(status, str):
        return 1, err + status + '\n'
    return status or 0, err


def random_boxes(rng, shape):
    """Random valid boxes float32 [*shape, 4] (ymin, xmin, ymax, xmax) inside the unit square."""
    mins = rng.uniform(0.0, 0.7, list(shape) + [2])
    sizes = rng.uniform(0.01, 0.3, list(shape) + [2])
    return np.concatenate([mins, mins + sizes], axis=-1).astype(np.float32)


def run_dataset(dataset):
    """Every element of a finite tf.data.Dataset, run in a session of the current default graph."""
    next_element = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    elements = []
    with tf.compat.v1.Session() as session:
        while True:
            try:
                elements.append(session.run(next_element))
            except tf.errors.OutOfRangeError:
                return elements


# Runs in a started command's process before its program (sys.argv[2:]): what a preexec
# function would do, without a Python-level fork of this multithreaded test process, whose
# child may crash in gRPC's fork handlers.
_EXEC_WITH_DEFAULT_SIGINT = (
    'import fcntl, os, signal, sys, termios\n'
    'if sys.argv[1] == "tty":\n'
    '    fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n'
    'signal.signal(signal.SIGINT, signal.SIG_DFL)\n'
    'os.execvp(sys.argv[2], sys.argv[2:])\n')


def with_default_sigint(command, controlling_terminal=False):
    """`command` (argv) run with SIGINT's default handling, as a shell starts a job, whatever
    this process does with SIGINT; with `controlling_terminal`, its stdin (a pseudo-terminal)
    becomes the controlling terminal of its new session (start it with start_new_session)."""
    return [sys.executable, '-c', _EXEC_WITH_DEFAULT_SIGINT,
            'tty' if controlling_terminal else '-', *command]


class Terminal:
    """A command started on a pseudo-terminal as from an interactive shell: its own session
    with the terminal as controlling terminal, its group in the foreground. Ctrl-C is the byte
    0x03 typed into it; the kernel sends SIGINT to the terminal's foreground group. The
    session id is the command's pid (session_processes)."""

    def __init__(self, command, cwd=REPO, env=None):
        master, slave = os.openpty()
        self.master = master
        self.process = subprocess.Popen(
            with_default_sigint(command, controlling_terminal=True), cwd=cwd, env=env,
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.chunks = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def output(self):
        return b''.join(self.chunks).decode('utf-8', 'replace')

    def ctrl_c(self):
        os.write(self.master, b'\x03')

    def stop_with_ctrl_c(self, timeout=60.0):
        """Ctrl-C; waits for the command (returns its exit code), then at most 15 s for every
        other process of its session to end, and closes the terminal."""
        self.ctrl_c()
        code = self.process.wait(timeout)
        deadline = time.monotonic() + 15
        while session_processes(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.close()
        return code

    def kill_leftovers(self):
        """SIGKILL to every process of the command's session still alive."""
        for pid in session_processes(self.process.pid):
            os.kill(pid, signal.SIGKILL)

    def close(self):
        self._reader.join(30)
        os.close(self.master)


def describe_processes(pids):
    """'pid: command line' of each process still there (for a failing assertion)."""
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            with open('/proc/%d/cmdline' % pid, 'rb') as cmdline:
                lines.append('%d: %s' % (pid, cmdline.read().replace(b'\0', b' ').decode()))
    return '\n'.join(lines)


def session_processes(sid):
    """Pids of the processes of session `sid` still alive (zombies excluded)."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, encoding='utf-8') as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != 'Z':
            pids.append(int(entry))
    return pids


class _HealthzOnly(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        self.send_response(200 if self.path == '/healthz' else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def healthz_server():
    """An HTTP server on 127.0.0.1 answering 200 to GET /healthz, 503 to other paths; yields
    its base URL."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _HealthzOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# Prelude of a script run in a fresh interpreter: from then on importing tensorflow or
# tensorflow_serving raises ImportError.
BLOCK_TENSORFLOW = r'''
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tensorflow_serving'):
            raise ImportError('blocked: ' + name)

sys.meta_path.insert(0, Block())
'''
