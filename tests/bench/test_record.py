"""Benchmark records (bench/record.py) and their rendering into the docs (bench/report.py)."""
import json
import sys

import pytest

from bench import machine, record, report


def _fake_bench(code=0):
    def main():
        print('machine: %s' % machine.describe())
        print('convert: 2 worker(s): 1051 images/s (best of 3)')
        record.figure('convert_2_workers', 1051.0, 'images/s', 'Converter, 2 workers')
        return code
    return main


def test_run_writes_the_printed_lines_the_command_and_the_machine(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'records' / 'convert.json'
    monkeypatch.setattr(sys, 'argv', ['convert.py', '--repeats', '3', '--json', str(path)])
    assert record.run(_fake_bench(), 'convert') == 0
    assert '1051 images/s' in capsys.readouterr().out
    written = json.loads(path.read_text())
    assert written['command'] == 'python -m bench.convert --repeats 3'
    assert written['lines'][1] == 'convert: 2 worker(s): 1051 images/s (best of 3)'
    assert written['figures'] == {'convert_2_workers': {
        'value': 1051.0, 'unit': 'images/s', 'label': 'Converter, 2 workers'}}
    assert set(written['machine']) == {'cpu', 'flags', 'cores', 'load_average', 'python',
                                       'tensorflow'}


def test_a_failed_run_writes_no_record(tmp_path, monkeypatch):
    path = tmp_path / 'convert.json'
    monkeypatch.setattr(sys, 'argv', ['convert.py', '--json=%s' % path])
    assert record.run(_fake_bench(code=1), 'convert') == 1
    assert not path.exists()


def test_figures_outside_a_recording_are_dropped():
    record.figure('x', 1.0, '', 'x')  # no error, nothing kept


def _record(name='convert', value=1051.0):
    return {'name': name, 'bench': 'convert', 'command': 'python -m bench.convert',
            'date': '2026-12-07', 'lines': ['convert: 1 worker(s): 952 images/s'],
            'machine': {'cpu': 'AMD EPYC', 'flags': ['avx2', 'fma'], 'cores': 2,
                        'load_average': [1.0, 1.5, 2.0], 'python': '3.11.7',
                        'tensorflow': '2.21.0'},
            'figures': {'convert_2_workers': {'value': value, 'unit': 'images/s',
                                              'label': 'Converter, 2 workers'}}}


def test_the_page_has_the_headline_row_the_machine_and_the_lines():
    page = report.render_page([_record()])
    assert '| Converter, 2 workers | 1051 images/s | [convert](#convert) |' in page
    assert 'AMD EPYC (avx2 fma), 2 cores, load average 1.0 1.5 2.0' in page
    assert 'convert: 1 worker(s): 952 images/s' in page
    assert '<a id="convert"></a>' in page


def test_the_readme_block_is_replaced_and_the_rest_kept():
    readme = 'intro\n%s\nold table\n%s\nrest\n' % (report.BEGIN, report.END)
    rendered = report.render_readme(readme, [_record(value=0.862)])
    assert rendered.startswith('intro\n') and rendered.endswith('\nrest\n')
    assert 'old table' not in rendered
    assert ('| Converter, 2 workers | 0.862 images/s | '
            '[convert](docs/benchmarks.md#convert) |') in rendered


def test_a_readme_without_the_block_is_an_error():
    with pytest.raises(ValueError, match='headline figures'):
        report.render_readme('no block here', [_record()])


def test_the_docs_show_what_the_stored_records_render():
    assert report.main(['--check']) == 0
