"""The machine line every benchmark prints beside its figures."""
import importlib.metadata
import os
import platform

# The CPU flags that decide which kernels TensorFlow and LiteRT can use.
FLAGS_OF_INTEREST = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16',
                     'amx_bf16', 'amx_int8')


def _cpuinfo_field(name):
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
            for line in cpuinfo:
                if line.split(':', 1)[0].strip() == name:
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU model name from /proc/cpuinfo (or what `platform` knows)."""
    return _cpuinfo_field('model name') or platform.processor() or 'unknown CPU'


def cpu_flags():
    """The flags of FLAGS_OF_INTEREST this CPU has, in that order."""
    flags = set((_cpuinfo_field('flags') or '').split())
    return [flag for flag in FLAGS_OF_INTEREST if flag in flags]


def info():
    """The machine as a dict: cpu, flags, cores, load average, Python and TensorFlow versions
    (no TensorFlow import)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    try:
        tensorflow = importlib.metadata.version('tensorflow')
    except importlib.metadata.PackageNotFoundError:
        tensorflow = 'not installed'
    return {'cpu': cpu_model(), 'flags': cpu_flags(), 'cores': cores,
            'load_average': [round(x, 1) for x in os.getloadavg()],
            'python': platform.python_version(), 'tensorflow': tensorflow}


def line(machine):
    """'CPU (flags), N cores, load average a b c, Python x, TensorFlow y' of an info() dict."""
    return '%s (%s), %d cores, load average %s, Python %s, TensorFlow %s' % (
        machine['cpu'], ' '.join(machine['flags']) or 'no AVX2', machine['cores'],
        ' '.join('%.1f' % x for x in machine['load_average']), machine['python'],
        machine['tensorflow'])


def describe():
    """The machine line of this machine, now."""
    return line(info())
