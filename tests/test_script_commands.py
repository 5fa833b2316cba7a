"""The Makefile's and the README's commands of the top-level scripts still parse."""
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
# Scripts the Makefile does not run (the README documents them).
README_ONLY = {'import_weights.py'}
# Placeholders of the README's commands that must be numbers (a shell variable of the
# walkthrough too).
README_NUMBERS = {'N': '1', '$STEPS': '1', '$((STEPS/20))': '0'}


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
    for match in re.finditer(re.escape(script) + r'((?: +\[?--[^\s\]]+\]?)+)', joined):
        yield [token.strip('[]') for token in match.group(1).split()]


def _substitute(flag, values):
    """'--x=$(VAR)/y' -> '--x=<value of VAR>/y'; a whole-value placeholder ('N') too."""
    name, _, value = flag.partition('=')
    value = re.sub(r'\$\([A-Z_]+\)|\$\*|^[A-Z]$|^\$[A-Z_]+$|^\$\(\([^)]*\)\)$',
                   lambda m: values.get(m.group(0), m.group(0)), value)
    return '%s=%s' % (name, value) if value else name


@pytest.mark.parametrize('source', ['Makefile', 'README.md'])
@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_documented_commands_parse(source, script):
    if source == 'Makefile' and script in README_ONLY:
        pytest.skip('%s is not in the Makefile' % script)
    text = _read(source)
    values = _makefile_values(text) if source == 'Makefile' else README_NUMBERS
    commands = list(_commands(text, script))
    assert commands, 'no %s command in %s' % (script, source)
    for command in commands:
        argv = [_substitute(flag, values) for flag in command]
        args = SCRIPTS[script].build_parser().parse_args(argv)
        for flag in argv:
            assert getattr(args, flag[2:].partition('=')[0]) is not None, flag


def test_every_local_serving_command_of_the_readme_listens_on_127_0_0_1():
    joined = re.sub(r'\\\n\s*', ' ', _read('README.md'))
    commands = re.findall(r'python -m serving\.model_server +--[^\n`]*', joined)
    assert len(commands) >= 4
    for command in commands:
        assert '--host=127.0.0.1' in command, command
