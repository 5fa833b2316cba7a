"""Session hooks of the training loop: the progress log line, the time limit, summaries."""
import logging
import time

import tensorflow as tf

from common import progress

IMAGE_SUMMARIES = 'image_summaries'
"""Collection of the image summaries, written on a time period rather than a step period."""

SUMMARY_POINTS = 100
"""Points per scalar curve in TensorBoard when the summary period is not given."""


def summary_steps(max_number_of_steps):
    """Default scalar summary period: SUMMARY_POINTS points over the run (at least every
    step), or every SUMMARY_POINTS steps when the run has no step limit."""
    if not max_number_of_steps:
        return SUMMARY_POINTS
    return max(1, max_number_of_steps // SUMMARY_POINTS)


def summary_hooks(output_dir, save_steps, image_secs):
    """Hooks writing the scalar summaries every `save_steps` steps and the image summaries
    (IMAGE_SUMMARIES collection) every `image_secs` seconds, into `output_dir`.

    Images are large, so they follow a time period that stays bounded on long runs;
    scalars are small, so a curve can have many points.
    """
    hooks = []
    scalars = tf.compat.v1.summary.merge_all()
    if scalars is not None:
        hooks.append(tf.compat.v1.train.SummarySaverHook(
            save_steps=save_steps, output_dir=output_dir, summary_op=scalars))
    images = tf.compat.v1.summary.merge_all(key=IMAGE_SUMMARIES)
    if images is not None:
        hooks.append(tf.compat.v1.train.SummarySaverHook(
            save_secs=image_secs, output_dir=output_dir, summary_op=images))
    return hooks


def format_progress(step, last_step, values, images_per_sec, sec_per_step,
                    cluster_images_per_sec=None):
    """One log line: step, total and per-part loss, learning rate, images/s and ETA.

    Args:
        step: global step after this run.
        last_step: final step of the run (None: no ETA).
        values: dict with `total`, `learning_rate` and further loss parts.
        images_per_sec: measured speed (images of all clones of this replica).
        sec_per_step: measured seconds per global step (for the ETA), or None: no ETA yet.
        cluster_images_per_sec: speed of all replicas of a cluster, or None.
    """
    parts = ' '.join('%s %.4f' % (k, v) for k, v in sorted(values.items())
                     if k not in ('total', 'learning_rate'))
    line = 'step %d%s: loss %.4f (%s), lr %.6g, %.2f images/s' % (
        step, '/%d' % last_step if last_step else '', values['total'], parts,
        values['learning_rate'], images_per_sec)
    if cluster_images_per_sec is not None:
        line += ' (cluster %.2f images/s)' % cluster_images_per_sec
    if last_step and sec_per_step is not None:
        line += ', ETA %s' % progress.format_duration((last_step - step) * sec_per_step)
    return line


class ProgressLogHook(tf.compat.v1.train.SessionRunHook):
    """Logs a progress line every `every_n_steps` steps (and on the first and last step).

    The first step of a session also builds the kernels and fills the input pipeline, so its
    line has no ETA; the ETA comes from the rate measured since the end of that step (steps
    per second averaged over the session so far, after the warm-up).

    In a cluster (`distributed`) other replicas move the global step too: the line shows
    the global step read after the run, this replica's images/s and, with
    `cluster_images_per_step`, the cluster's (global steps x images per global step).

    Args:
        tensors: dict name -> scalar tensor; must hold `total` and `learning_rate`.
        global_step: the global step tensor.
        every_n_steps: log period.
        images_per_step: images consumed by one step (batch size x clones).
        last_step: final step (for the ETA), or None.
        distributed: other replicas advance the global step.
        cluster_images_per_step: images of all replicas per global step, or None.
        clock: function returning seconds (tests pass a fake one).
    """

    def __init__(self, tensors, global_step, every_n_steps, images_per_step, last_step=None,
                 distributed=False, cluster_images_per_step=None, clock=time.time):
        self._tensors = tensors
        self._global_step = global_step
        self._every_n = max(1, int(every_n_steps))
        self._images_per_step = images_per_step
        self._last_step = last_step
        self._distributed = distributed
        self._cluster_images_per_step = cluster_images_per_step
        self._clock = clock
        self._step = 0
        self._first_step = 0
        self._mark_step = 0
        self._mark_runs = 0
        self._mark_time = 0.0
        self._warm_step = None
        self._warm_time = None

    @property
    def step(self):
        """The global step after the last run."""
        return self._step

    def after_create_session(self, session, coord):
        self._step = int(session.run(self._global_step))
        self._first_step = self._step
        self._mark_step = self._step
        self._mark_time = self._clock()
        self._warm_step = None
        self._warm_time = None

    def _due(self):
        next_step = self._step + 1
        return (next_step % self._every_n == 0 or next_step == self._first_step + 1
                or next_step == self._last_step)

    def before_run(self, run_context):
        if self._due():
            return tf.compat.v1.train.SessionRunArgs(self._tensors)
        return None

    def after_run(self, run_context, run_values):
        self._step += 1
        self._mark_runs += 1
        if run_values.results is None:
            return
        if self._distributed:
            self._step = int(run_context.session.run(self._global_step))
        now = self._clock()
        elapsed = max(now - self._mark_time, 1e-9)
        steps = max(self._step - self._mark_step, 1)
        cluster_speed = None
        if self._cluster_images_per_step:
            cluster_speed = steps * self._cluster_images_per_step / elapsed
        sec_per_step = None
        if self._warm_time is None:
            self._warm_step, self._warm_time = self._step, now
        elif self._step > self._warm_step:
            sec_per_step = (now - self._warm_time) / (self._step - self._warm_step)
        logging.info(format_progress(self._step, self._last_step, run_values.results,
                                     self._mark_runs * self._images_per_step / elapsed,
                                     sec_per_step, cluster_speed))
        self._mark_step = self._step
        self._mark_runs = 0
        self._mark_time = now


class StopAfterSecondsHook(tf.compat.v1.train.SessionRunHook):
    """Requests a normal stop (final checkpoint written) after `seconds` of training."""

    def __init__(self, seconds):
        self._seconds = seconds
        self._start = None

    def after_create_session(self, session, coord):
        self._start = time.time()

    def after_run(self, run_context, run_values):
        if time.time() - self._start >= self._seconds:
            logging.info('Training time limit of %d s reached; stopping', self._seconds)
            run_context.request_stop()
