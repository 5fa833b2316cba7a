"""Renders the benchmark records in docs/benchmarks/ into docs/benchmarks.md and the headline
table of README.md, so that no figure in the docs is typed by hand.

    python -m bench.report [--records docs/benchmarks] [--check]

Each record is what a benchmark wrote with `--json docs/benchmarks/<name>.json` (bench/record.py).
--check renders without writing and exits 1 when a file differs from its rendering.
"""
import argparse
import glob
import importlib
import json
import os
import sys

from bench import machine
from common import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDS = os.path.join(ROOT, 'docs', 'benchmarks')
PAGE = os.path.join(ROOT, 'docs', 'benchmarks.md')
README = os.path.join(ROOT, 'README.md')
BEGIN = '<!-- headline figures: rendered by bench.report -->'
END = '<!-- end of headline figures -->'

INTRODUCTION = """\
# Benchmarks

Every figure on this page is rendered by `python -m bench.report` from the JSON records in
[benchmarks/](benchmarks/), which the benchmarks write with `--json`:

```bash
python -m bench.convert --json docs/benchmarks/convert.json
python -m bench.report          # rewrites this page and the README's headline table
```

Each record keeps the command, the date and the machine: CPU model and the flags that decide
the kernels (AVX2, AVX-512, VNNI, bfloat16, AMX), cores, load average, Python and TensorFlow.
Absolute times depend on the machine and its load; where a benchmark compares variants it
runs them in one sitting on one machine, so read its ratios rather than comparing absolute
times across records. How each benchmark measures is in its module's docstring
(`python -m bench.<name> --help`).
"""


def load(directory=RECORDS):
    """The records in `directory`, sorted by benchmark name: a list of dicts."""
    records = []
    for path in sorted(glob.glob(os.path.join(directory, '*.json'))):
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
        record['name'] = os.path.splitext(os.path.basename(path))[0]
        records.append(record)
    return records


def _title(record):
    """The record's own "title", else the first line of its benchmark module's docstring."""
    if record.get('title'):
        return record['title']
    module = importlib.import_module('bench.%s' % record['bench'])
    return (module.__doc__ or record['bench']).strip().split('\n')[0].rstrip('.')


def _machine(record):
    """The machine line; a transcribed record may hold the machine as the text it was given."""
    described = record['machine']
    return described if isinstance(described, str) else machine.line(described)


def _anchor(record):
    return record['name'].lower().replace('_', '-')


def _value(figure):
    value = figure['value']
    text = ('%.3g' % value if abs(value) < 10 else '%.0f' % value) if isinstance(
        value, float) else str(value)
    return '%s %s' % (text, figure['unit']) if figure['unit'] else text


def headline_rows(records, link_prefix):
    """Markdown rows `| figure | value | record |` of every named figure."""
    rows = ['| figure | value | measured by |', '|---|---|---|']
    for record in records:
        for key in sorted(record['figures']):
            figure = record['figures'][key]
            rows.append('| %s | %s | [%s](%s#%s) |' % (
                figure['label'], _value(figure), record['name'], link_prefix, _anchor(record)))
    return rows


def render_page(records):
    """The text of docs/benchmarks.md."""
    out = [INTRODUCTION, '## Headline figures', ''] + headline_rows(records, '') + ['']
    for record in records:
        out += ['<a id="%s"></a>' % _anchor(record), '',
                '## %s: %s' % (record['name'], _title(record)), '',
                '`%s`, %s, on %s.' % (record['command'], record['date'], _machine(record)),
                '']
        if record.get('transcribed'):
            rerun = '' if record.get('title') else '; running the command with `--json` replaces it'
            out += ['Transcribed from the printed output of that run (%s)%s.'
                    % (record['transcribed'], rerun), '']
        out += ['```text'] + record['lines'] + ['```', '']
        for note in record.get('notes', ()):
            out += [note, '']
    return '\n'.join(out)


def render_readme(readme_text, records):
    """README.md with the block between BEGIN and END replaced by the headline table."""
    head, found, rest = readme_text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError('README.md has no %s ... %s block' % (BEGIN, END))
    rows = headline_rows(records, 'docs/benchmarks.md')
    return head + BEGIN + '\n' + '\n'.join(rows) + '\n' + END + tail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', default=RECORDS, help='folder of the JSON records')
    parser.add_argument('--check', action='store_true',
                        help='exit 1 when docs/benchmarks.md or the README table is stale')
    args = parser.parse_args(argv)
    records = load(args.records)
    if not records:
        parser.error('no records (*.json) in %s' % args.records)
    with open(README, encoding='utf-8') as f:
        readme = f.read()
    rendered = {PAGE: render_page(records), README: render_readme(readme, records)}
    stale = []
    for path, text in rendered.items():
        current = open(path, encoding='utf-8').read() if os.path.exists(path) else None
        if current != text:
            stale.append(os.path.relpath(path, ROOT))
            if not args.check:
                files.atomic_write(path, text)
    if args.check and stale:
        print('stale, run `python -m bench.report`: %s' % ', '.join(stale))
        return 1
    print('rewrote %s' % ', '.join(stale) if stale else 'docs/benchmarks.md and README.md are '
          'up to date')
    return 0


if __name__ == '__main__':
    sys.exit(main())
