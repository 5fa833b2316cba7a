"""The commands of the top-level scripts shown in the Makefile, README.md and docs/*.md parse."""
import glob
import os
import re

import pytest

import eval_ssd_network
import export_model
import import_weights
import tf_convert_data
import train_ssd_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {'tf_convert_data.py': tf_convert_data, 'train_ssd_network.py': train_ssd_network,
           'eval_ssd_network.py': eval_ssd_network, 'export_model.py': export_model,
           'import_weights.py': import_weights}
# Scripts the Makefile does not run (the docs show them).
README_ONLY = {'import_weights.py'}
# Placeholders of the docs' commands that must be numbers (shell variables of the walkthrough
# and of the paper's cluster recipe too).
README_NUMBERS = {'N': '1', '$STEPS': '1', '$((STEPS/20))': '0', '$I': '0'}
DOCS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def _read(name):
    with open(os.path.join(ROOT, name), encoding='utf-8') as f:
        return f.read()


def _makefile_values(text):
    """Make variable -> default value, with $(OTHER) expanded; `$*` (the stem) -> 'test'."""
    values = dict(re.findall(r'^([A-Z_]+) *[?:]?= *(.*)$', text, re.M))
    values['*'] = 'test'

    def expand(value):
        return re.sub(r'\$\(([A-Z_]+)\)|\$(\*)',
                      lambda m: expand(values.get(m.group(1) or m.group(2), '')), value)

    return {'$(%s)' % name if name != '*' else '$*': expand(value)
            for name, value in values.items()}


def _commands(text, script):
    """The flags of each command running `script` (continued lines joined, [...] unwrapped)."""
    joined = re.sub(r'\\\n\s*', ' ', text)
    for match in re.finditer(re.escape(script) + r'((?: +\[?--[^\s\]`]+\]?)+)', joined):
        yield [token.strip('[]') for token in match.group(1).split()]


def _substitute(flag, values):
    """'--x=$(VAR)/y' -> '--x=<value of VAR>/y'; a whole-value placeholder ('N') too."""
    name, _, value = flag.partition('=')
    value = re.sub(r'\$\([A-Z_]+\)|\$\*|^[A-Z]$|^\$[A-Z_]+$|^\$\(\([^)]*\)\)$',
                   lambda m: values.get(m.group(0), m.group(0)), value)
    return '%s=%s' % (name, value) if value else name


@pytest.mark.parametrize('source', ['Makefile', 'README.md'] + DOCS)
@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_documented_commands_parse(source, script):
    if source == 'Makefile' and script in README_ONLY:
        pytest.skip('%s is not in the Makefile' % script)
    text = _read(source)
    values = _makefile_values(text) if source == 'Makefile' else README_NUMBERS
    commands = list(_commands(text, script))
    if source in DOCS and not commands:
        return  # a page shows the scripts of its own task
    assert commands, 'no %s command in %s' % (script, source)
    for command in commands:
        argv = [_substitute(flag, values) for flag in command]
        args = SCRIPTS[script].build_parser().parse_args(argv)
        for flag in argv:
            assert getattr(args, flag[2:].partition('=')[0]) is not None, flag


def test_the_docs_show_every_script():
    shown = '\n'.join(_read(page) for page in DOCS)
    for script in SCRIPTS:
        assert list(_commands(shown, script)), 'no %s command in docs/' % script


def test_every_local_serving_command_of_the_docs_listens_on_127_0_0_1():
    joined = re.sub(r'\\\n\s*', ' ', '\n'.join(_read(page) for page in ['README.md'] + DOCS))
    commands = re.findall(r'python -m serving\.model_server +--[^\n`]*', joined)
    assert len(commands) >= 4
    for command in commands:
        assert '--host=127.0.0.1' in command, command
