"""The import direction of the README's code map, checked on the source of every package.

common <- datasets, nets <- preprocessing <- training / evaluation <- export, and datasets, nets
<- importers; the runtime packages (client, serving, web) import only common and client, and the
TensorFlow-free ones (common, client, web, and the importers' torchvision layout, which the
torchvision reference script runs beside torch) no TensorFlow at all.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD_TIME = {'datasets', 'nets', 'preprocessing', 'training', 'evaluation', 'export', 'deployment',
              'importers'}
ALLOWED = {
    'common': {'common'},
    'datasets': {'common', 'datasets'},
    'nets': {'common', 'nets'},
    'preprocessing': {'common', 'datasets', 'nets', 'preprocessing'},
    'deployment': {'common', 'deployment'},
    'training': {'common', 'datasets', 'nets', 'preprocessing', 'deployment', 'training'},
    'evaluation': {'common', 'datasets', 'nets', 'preprocessing', 'evaluation'},
    'export': {'common', 'datasets', 'nets', 'preprocessing', 'export'},
    'importers': {'common', 'datasets', 'nets', 'importers'},
    'client': {'common', 'client'},
    'serving': {'common', 'client', 'serving'},
    'web': {'common', 'client', 'web'},
}
# The top-level scripts only parse flags and call the library code of the build-time packages
# (a cluster's evaluator task of the trainer runs the evaluation script).
SCRIPTS = {'tf_convert_data.py': {'common', 'datasets'},
           'train_ssd_network.py': BUILD_TIME - {'evaluation', 'export', 'importers'} | {
               'common', 'eval_ssd_network'},
           'eval_ssd_network.py': {'common', 'datasets', 'nets', 'preprocessing', 'evaluation'},
           'export_model.py': {'common', 'datasets', 'nets', 'export'},
           'import_weights.py': {'common', 'nets', 'importers'}}
FIRST_PARTY = set(ALLOWED) | {'bench', 'tests'} | {s[:-3] for s in SCRIPTS}
NO_TENSORFLOW = ['common', 'client', 'web', 'importers/torchvision_ssd.py',
                 'importers/vgg_layers.py', 'importers/errors.py']
TENSORFLOW = ('tensorflow', 'tf_slim', 'tensorflow_serving', 'keras')


def _imports(path):
    """Top-level package names imported anywhere in a file (including inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split('.')[0])
    return names


def _files(target):
    path = ROOT / target
    return sorted(path.rglob('*.py')) if path.is_dir() else [path]


@pytest.mark.parametrize('package', sorted(ALLOWED))
def test_packages_import_only_what_the_code_map_allows(package):
    wrong = {str(path.relative_to(ROOT)): sorted((_imports(path) & FIRST_PARTY) - ALLOWED[package])
             for path in _files(package)}
    assert not {path: names for path, names in wrong.items() if names}


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_scripts_import_only_library_packages(script):
    assert (_imports(ROOT / script) & FIRST_PARTY) - SCRIPTS[script] == set()


def test_bench_imports_nothing_from_tests():
    wrong = {str(path.relative_to(ROOT)) for path in _files('bench') if 'tests' in _imports(path)}
    assert not wrong


@pytest.mark.parametrize('target', NO_TENSORFLOW)
def test_runtime_modules_import_no_tensorflow(target):
    found = {str(path.relative_to(ROOT)): sorted(_imports(path) & set(TENSORFLOW))
             for path in _files(target) if path.exists()}
    assert not {path: names for path, names in found.items() if names}


def test_the_check_catches_a_runtime_package_importing_build_time_code(tmp_path):
    module = tmp_path / 'bad.py'
    module.write_text('import numpy\nfrom nets import nets_factory\n'
                      'def f():\n    from training import train_lib\n')
    assert (_imports(module) & FIRST_PARTY) - ALLOWED['serving'] == {'nets', 'training'}
    assert BUILD_TIME.isdisjoint(ALLOWED['serving'] | ALLOWED['web'])
