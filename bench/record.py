"""The JSON record a benchmark writes beside its printed figures (`--json PATH`).

Every benchmark prints its figures; with `--json PATH` the same lines are also written, with the
command, the date, the machine and any headline figures the benchmark names, to PATH:

    {"bench": "convert", "command": "python -m bench.convert --repeats 3",
     "date": "2026-12-07", "machine": {...machine.info()...},
     "lines": ["data: 1000 synthetic JPEGs, ...", "convert: 1 worker(s): 952 images/s ..."],
     "figures": {"convert_2_workers": {"value": 1051.0, "unit": "images/s",
                                       "label": "Converter, 2 workers"}}}

`python -m bench.report` turns the records kept in docs/benchmarks/ into docs/benchmarks.md.
A record of a run made before its benchmark wrote records holds that run's printed lines as
they were, and says so in an extra field: "transcribed": "<where the lines were kept>"; its
"machine" may then be the text the run gave, and a measurement that is not a bench module's
(`make demo`) names itself with "title". "notes" are short paragraphs printed after the lines.
"""
import argparse
import contextlib
import datetime
import io
import json
import os
import sys

from bench import machine
from common import files

_ACTIVE = []


def add_flag(parser):
    """Adds --json PATH to a benchmark's argument parser."""
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write the printed figures, the command and the machine to '
                             'this JSON record (docs/benchmarks/<bench>.json feeds bench.report)')


class _Tee(io.TextIOBase):
    """Writes to a stream and keeps every complete line written."""

    def __init__(self, stream):
        self.stream, self.lines, self.partial = stream, [], ''

    def write(self, text):
        self.stream.write(text)
        lines = (self.partial + text).split('\n')
        self.partial = lines.pop()
        self.lines.extend(lines)
        return len(text)

    def flush(self):
        self.stream.flush()


def figure(key, value, unit, label):
    """Names a headline figure of the running benchmark (kept only when it records)."""
    for record in _ACTIVE:
        record['figures'][key] = {'value': value, 'unit': unit, 'label': label}


@contextlib.contextmanager
def recording(bench, argv=None):
    """Keeps what the block prints: yields the record, whose 'lines' are set on exit.

    Args:
      bench: the benchmark's module name under bench/ ('convert').
      argv: its arguments (default sys.argv[1:]); the recorded command leaves out --json.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    record = {'bench': bench, 'command': ' '.join(['python -m bench.%s' % bench]
                                                  + _without_json(argv)),
              'date': datetime.date.today().isoformat(), 'machine': machine.info(),
              'lines': [], 'figures': {}}
    tee = _Tee(sys.stdout)
    _ACTIVE.append(record)
    try:
        with contextlib.redirect_stdout(tee):
            yield record
    finally:
        _ACTIVE.remove(record)
        record['lines'] = [line for line in tee.lines + [tee.partial] if line.strip()]


def run(main, bench):
    """Runs a benchmark's main() (whose parser has add_flag) and, when it succeeds and --json
    is given, writes its record. Returns main's exit code."""
    peek = argparse.ArgumentParser(add_help=False)
    add_flag(peek)
    path = peek.parse_known_args()[0].json
    with recording(bench) as record:
        code = main()
    if path and not code:
        write(path, record)
    return code


def write(path, record):
    """Writes a record to `path` through a temporary name."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    files.atomic_write(path, json.dumps(record, indent=1, sort_keys=True) + '\n')


def _without_json(argv):
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == '--json':
            skip = True
        elif not arg.startswith('--json='):
            kept.append(arg)
    return kept
