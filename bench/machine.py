"""The machine line every benchmark prints beside its figures."""
import importlib.metadata
import os
import platform


def cpu_model():
    """The CPU model name from /proc/cpuinfo (or what `platform` knows)."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def describe():
    """'CPU, N cores, load average a b c, Python x, TensorFlow y' (no TensorFlow import)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return '%s, %d cores, load average %s, Python %s, TensorFlow %s' % (
        cpu_model(), cores, ' '.join('%.1f' % x for x in os.getloadavg()),
        platform.python_version(), importlib.metadata.version('tensorflow'))
