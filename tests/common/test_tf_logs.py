"""common.tf_logs: the banner once, the listed lines dropped, everything else unchanged; one
switch shows everything; nothing written before a crash is lost; docs/troubleshooting.md lists
each line."""
import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings

import pytest

from common import tf_logs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABSL = ('WARNING: All log messages before absl::InitializeLog() is called are written to '
        'STDERR')
NO_DRIVERS = ('I0000 00:00:1796614645.709404    8760 cudart_stub.cc:31] Could not find cuda '
              'drivers on your machine, GPU will not be used.')
CUINIT = ('E0000 00:00:1796614675.280910    8845 cuda_platform.cc:52] failed call to cuInit: '
          'INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)')
MLIR = ('I0000 00:00:1796614693.302564    8845 mlir_graph_optimization_pass.cc:437] MLIR V1 '
        'optimization pass is not enabled')


def test_the_banner_is_kept_once_and_the_listed_lines_are_dropped():
    line_filter = tf_logs.LineFilter()
    lines = [ABSL, NO_DRIVERS, 'real output', ABSL, NO_DRIVERS, CUINIT, MLIR,
             'E0000 other error', 'Traceback (most recent call last):']
    assert [line for line in lines if line_filter.keep(line)] == [
        ABSL, NO_DRIVERS, 'real output', 'E0000 other error', 'Traceback (most recent call last):']


def test_a_cuinit_failure_is_kept_when_the_banner_did_not_say_there_is_no_driver():
    assert tf_logs.LineFilter().keep(CUINIT)


SCRIPT = textwrap.dedent('''\
    import os, sys
    sys.path.insert(0, %r)
    from common import tf_logs
    tf_logs.filter_stderr()
    for line in sys.argv[2:]:
        os.write(2, (line + '\\n').encode())
    sys.stderr.write('last words, no newline')
    sys.stderr.flush()
    if sys.argv[1] == 'abort':
        os.abort()
    ''' % ROOT)


@pytest.mark.parametrize('ending', ['exit', 'abort'])
def test_filter_stderr_passes_what_is_not_listed_even_when_the_process_crashes(ending):
    result = subprocess.run([sys.executable, '-c', SCRIPT, ending, ABSL, NO_DRIVERS, 'one',
                             ABSL, NO_DRIVERS, CUINIT, MLIR, 'two'],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, SSD_ALL_LOGS=''))
    assert result.stderr == '\n'.join([ABSL, NO_DRIVERS, 'one', 'two',
                                       'last words, no newline'])


LINGERING = textwrap.dedent('''\
    import atexit, os, subprocess, sys
    sys.path.insert(0, %r)
    from common import tf_logs
    tf_logs.filter_stderr()
    atexit.unregister(tf_logs.close_stderr_filter)
    atexit.register(tf_logs.close_stderr_filter, 120)
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    print(child.pid, flush=True)
    os.write(2, b'one\\n')
    sys.stderr.write('last words, no newline')
    ''' % ROOT)


def test_a_process_ends_without_waiting_for_a_child_that_shares_its_stderr(tmp_path):
    stderr_path = tmp_path / 'stderr'
    with open(stderr_path, 'wb') as stderr:
        process = subprocess.Popen([sys.executable, '-c', LINGERING], stdout=subprocess.PIPE,
                                   stderr=stderr, env=dict(os.environ, SSD_ALL_LOGS=''))
    child = int(process.stdout.readline())
    try:
        assert process.wait(timeout=60) == 0
        os.kill(child, 0)  # still running, still holding the filter's pipe
        assert stderr_path.read_text() == 'one\nlast words, no newline'
    finally:
        os.kill(child, 9)
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()


def test_the_switch_shows_everything():
    lines = [ABSL, NO_DRIVERS, ABSL, NO_DRIVERS, CUINIT, MLIR]
    result = subprocess.run([sys.executable, '-c', SCRIPT, 'exit', *lines], capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, SSD_ALL_LOGS='1'))
    assert result.stderr == '\n'.join(lines + ['last words, no newline'])


def test_python_records_and_warnings_of_the_list_are_dropped(caplog, monkeypatch):
    monkeypatch.delenv(tf_logs.SWITCH, raising=False)
    logger = logging.getLogger('tensorflow')
    old_filters = list(logger.filters)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            tf_logs.filter_python_logs()
            logger.warning('From x.py:1: get_checkpoint_mtimes (from tensorflow.python.'
                           'checkpoint.checkpoint_management) is deprecated and will be removed')
            logger.info('Coordinator stopped with threads still running: QueueRunnerThread')
            logger.warning('From model_deploy.py:405: SyncReplicasOptimizer.__init__ (from '
                           'tensorflow.python.training.sync_replicas_optimizer) is deprecated '
                           'and will be removed in a future version.\nInstructions ...')
            logger.warning('a real problem')
            warnings.warn('`layer.apply` is deprecated and will be removed', UserWarning)
            warnings.warn('Seed 1 from outer graph might be getting used by function '
                          'Dataset_map_x, if the random op has not been provided any seed.')
            warnings.warn('another warning', UserWarning)
        assert [r.getMessage() for r in caplog.records if r.name == 'tensorflow'] == [
            'a real problem']
        assert [str(w.message) for w in caught] == ['another warning']
    finally:
        logger.filters[:] = old_filters


def test_the_troubleshooting_page_lists_every_line_and_the_switch():
    with open(os.path.join(ROOT, 'docs', 'troubleshooting.md'), encoding='utf-8') as page:
        text = page.read()
    section = re.search(r'\n## Log lines that are not problems\n(.*?)\n## ', text,
                        re.S).group(1)
    flat = ' '.join(section.split())
    for entry in tf_logs.HARMLESS:
        assert ' '.join(entry.text.split()) in flat, entry.text
    assert '%s=1' % tf_logs.SWITCH in flat
