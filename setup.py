"""Install the SSD training-to-serving pipeline as an editable package."""
import pathlib
import re

from setuptools import setup

HERE = pathlib.Path(__file__).parent


def _version():
    text = (HERE / 'common' / 'version.py').read_text()
    return re.search(r"^VERSION = '([^']+)'", text, re.M).group(1)


def _requirements(name='requirements.txt'):
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='ssd-pipeline',
    version=_version(),
    description='SSD object detection: data, training, VOC evaluation, SavedModel export, '
                'TF-Serving-compatible serving and a web page.',
    python_requires='>=3.11',
    packages=['common', 'datasets', 'nets', 'preprocessing', 'deployment', 'training',
              'evaluation', 'export', 'importers', 'client', 'serving', 'web'],
    py_modules=['tf_convert_data', 'train_ssd_network', 'eval_ssd_network', 'export_model',
                'import_weights'],
    include_package_data=True,
    package_data={'web': ['templates/*.html', 'static/*'], 'serving': ['*.yml', '*.config']},
    install_requires=_requirements(),
    # Reading torchvision .pth files (import_weights.py --source=torchvision): .[torch]; the
    # LiteRT runtime of --format=tflite exports: .[tflite].
    extras_require={'torch': _requirements('requirements-torch.txt'),
                    'tflite': _requirements('requirements-tflite.txt')},
)
