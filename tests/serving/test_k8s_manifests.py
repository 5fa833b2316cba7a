"""serving/k8s/, web/k8s/, requirements-web.txt and web/Dockerfile agree with the code and configs.

Every manifest parses; ports, model name, paths and environment variables match the defaults of
common/signatures.py, web/config.py, web/gunicorn.conf.py and the shipped models.config and
batching.config; the web requirements pin requirements.txt's versions and hold no TensorFlow.
"""
import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from client import protos, ssd_client
from common import signatures
from web import config as web_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S_FOLDERS = (ROOT / 'serving' / 'k8s', ROOT / 'web' / 'k8s')
WEB_REQUIREMENTS = ROOT / 'requirements-web.txt'
# Distributions that are or pull in TensorFlow, and the runtime-only heavy packages of the trainer.
FORBIDDEN = re.compile(r'^(tensorflow|tf-|tf_|keras|tensorboard|matplotlib|pycocotools)', re.I)
WEB_PACKAGES = {'flask', 'gunicorn', 'grpcio', 'protobuf', 'numpy', 'opencv-python-headless',
                'pillow'}


def _documents():
    """(file name, document) of every manifest in serving/k8s/ and web/k8s/."""
    files = sorted(path for folder in K8S_FOLDERS for path in folder.glob('*.yaml'))
    assert len(files) >= len(K8S_FOLDERS), K8S_FOLDERS
    return [(path.name, doc) for path in files for doc in yaml.safe_load_all(path.read_text())
            if doc is not None]


def _find(kind, name):
    found = [doc for _, doc in _documents()
             if doc['kind'] == kind and doc['metadata']['name'] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _container(deployment, name=None):
    """The deployment's only container, or the one called `name`."""
    containers = deployment['spec']['template']['spec']['containers']
    if name is None:
        (container,) = containers
        return container
    (container,) = [c for c in containers if c['name'] == name]
    return container


def _flags(container):
    """--name=value flags of a container as a dict ('--enable_batching' maps to True)."""
    flags = {}
    for arg in container['args']:
        name, sep, value = arg.partition('=')
        flags[name] = value if sep else True
    return flags


def _ports(container):
    return {p['name']: p['containerPort'] for p in container['ports']}


def _models_config():
    text = (ROOT / 'serving' / 'models.config').read_text()
    (model,) = text_format.Parse(text, model_server_config_pb2.ModelServerConfig()
                                 ).model_config_list.config
    return model


def _config_mount(deployment, container):
    """Mount path and ConfigMap name of the container's ConfigMap volume."""
    volumes = {v['name']: v for v in deployment['spec']['template']['spec']['volumes']}
    (mount,) = [m for m in container['volumeMounts'] if 'configMap' in volumes[m['name']]]
    return mount['mountPath'], volumes[mount['name']]['configMap']['name']


def _requirements(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split('#')[0].strip()
        if line:
            name, sep, version = line.partition('==')
            assert sep, f'{path.name}: {line!r} is not pinned with =='
            pins[name.strip().lower()] = version.strip()
    return pins


def test_every_manifest_parses_with_kind_and_name():
    kinds = {}
    for filename, doc in _documents():
        assert {'apiVersion', 'kind', 'metadata'} <= set(doc), filename
        kinds.setdefault(doc['kind'], set()).add(doc['metadata']['name'])
    assert kinds['Deployment'] == {'tfserving', 'ssd-web'}
    assert kinds['HorizontalPodAutoscaler'] == {'tfserving', 'ssd-web'}
    assert kinds['Service'] == {'tfserving', 'ssd-web'}


def test_tfserving_deployment_serves_models_config_with_batching():
    deployment = _find('Deployment', 'tfserving')
    container = _container(deployment)
    flags = _flags(container)
    ports = _ports(container)
    model = _models_config()
    assert model.name == signatures.DEFAULT_MODEL_NAME
    assert int(flags['--port']) == ports['grpc'] == signatures.DEFAULT_GRPC_PORT
    assert int(flags['--rest_api_port']) == ports['rest']
    assert flags['--enable_batching'] is True
    config_dir, configmap = _config_mount(deployment, container)
    assert flags['--model_config_file'] == config_dir + '/models.config'
    assert flags['--batching_parameters_file'] == config_dir + '/batching.config'
    # The ConfigMap is made from the shipped files (tfserving.yaml's header command).
    assert (f'kubectl create configmap {configmap} --from-file=serving/models.config '
            '--from-file=serving/batching.config') in (
                K8S_FOLDERS[0] / 'tfserving.yaml').read_text()
    # The model volume is mounted where models.config's base_path points.
    mounts = {m['mountPath']: m for m in container['volumeMounts']}
    assert mounts[model.base_path]['readOnly'] is True
    assert deployment['spec']['replicas'] >= 2
    # The image is the TF Serving release of the pinned tensorflow-serving-api (and TensorFlow).
    pins = _requirements(ROOT / 'requirements.txt')
    assert container['image'] == 'tensorflow/serving:' + pins['tensorflow-serving-api']
    assert pins['tensorflow-serving-api'] == pins['tensorflow']
    assert deployment['spec']['selector']['matchLabels'].items() <= (
        deployment['spec']['template']['metadata']['labels'].items())


def test_tfserving_probes_use_rest_status_endpoint():
    container = _container(_find('Deployment', 'tfserving'))
    for probe in ('readinessProbe', 'livenessProbe'):
        get = container[probe]['httpGet']
        assert get['path'] == f'/v1/models/{signatures.DEFAULT_MODEL_NAME}', probe
        assert get['port'] in ('rest', _ports(container)['rest']), probe
    assert container['readinessProbe']['timeoutSeconds'] == 1
    requests = container['resources']['requests']
    assert requests['cpu'] and requests['memory']


def test_tfserving_accepts_the_clients_keepalive_pings():
    """Without these, TF Serving answers the web client's pings with GOAWAY too_many_pings."""
    wanted = ','.join('%s=%s' % option for option in protos.SERVER_KEEPALIVE_OPTIONS)
    flags = _flags(_container(_find('Deployment', 'tfserving')))
    assert flags['--grpc_channel_arguments'] == wanted
    compose = yaml.safe_load((ROOT / 'serving' / 'docker-compose.yml').read_text())
    assert '--grpc_channel_arguments=' + wanted in compose['services']['tfserving']['command']


def test_headless_service_routes_grpc_to_tfserving_pods():
    service = _find('Service', 'tfserving')
    deployment = _find('Deployment', 'tfserving')
    assert service['spec']['clusterIP'] == 'None'
    assert service['spec']['selector'].items() <= (
        deployment['spec']['template']['metadata']['labels'].items())
    ports = {p['name']: p for p in service['spec']['ports']}
    assert ports['grpc']['port'] == signatures.DEFAULT_GRPC_PORT
    assert ports['grpc']['targetPort'] in _ports(_container(deployment))


def test_web_environment_is_valid_config_pointing_at_headless_service():
    deployment = _find('Deployment', 'ssd-web')
    container = _container(deployment, 'web')
    env = {item['name']: item['value'] for item in container['env']}
    gunicorn_vars = {'WEB_BIND', 'WEB_WORKERS', 'WEB_THREADS', 'WEB_TIMEOUT', 'WEB_LOG_LEVEL'}
    assert set(env) <= set(web_config.DEFAULTS) | gunicorn_vars, set(env)
    config = web_config.load_config(environ=env)
    assert config['MODEL_NAME'] == _models_config().name
    service = _find('Service', 'tfserving')
    namespace = service['metadata'].get('namespace', 'default')
    assert config['SERVING_ADDRESS'] == (
        f'dns:///{service["metadata"]["name"]}.{namespace}.svc.cluster.local:'
        f'{signatures.DEFAULT_GRPC_PORT}')
    # gunicorn listens for the pod's nginx only; nginx takes the traffic and the probes.
    nginx = _container(deployment, 'nginx')
    nginx_env = {item['name']: item['value'] for item in nginx['env']}
    assert env['WEB_BIND'] == nginx_env['WEB_UPSTREAM'] and env['WEB_BIND'].startswith('127.')
    assert int(nginx_env['NGINX_PORT']) == _ports(nginx)['http']
    assert nginx['readinessProbe']['httpGet']['path'] == '/healthz'
    # /healthz asks the replicas with a deadline well within the probe's timeout.
    assert ssd_client.STATUS_TIMEOUT_S * 2 < nginx['readinessProbe']['timeoutSeconds']
    web_service = _find('Service', 'ssd-web')
    assert web_service['spec']['ports'][0]['targetPort'] in _ports(nginx)
    assert web_service['spec']['selector'].items() <= (
        deployment['spec']['template']['metadata']['labels'].items())


@pytest.mark.parametrize('name', ['tfserving', 'ssd-web'])
def test_autoscaler_targets_deployment_with_cpu_requests(name):
    hpa = _find('HorizontalPodAutoscaler', name)
    target = hpa['spec']['scaleTargetRef']
    assert (target['kind'], target['name']) == ('Deployment', name)
    deployment = _find('Deployment', name)
    assert hpa['spec']['minReplicas'] <= deployment['spec']['replicas'] <= (
        hpa['spec']['maxReplicas'])
    # CPU utilisation is measured against the containers' CPU requests.
    assert all(c['resources']['requests']['cpu']
               for c in deployment['spec']['template']['spec']['containers'])


def test_nginx_template_is_mounted_from_the_configmap_of_the_shipped_file():
    deployment = _find('Deployment', 'ssd-web')
    nginx = _container(deployment, 'nginx')
    (mount,) = nginx['volumeMounts']
    volumes = {v['name']: v for v in deployment['spec']['template']['spec']['volumes']}
    configmap = volumes[mount['name']]['configMap']['name']
    assert mount['mountPath'] == '/etc/nginx/templates'  # the image renders *.template there
    assert (f'kubectl create configmap {configmap} --from-file=web/nginx/default.conf.template'
            in (K8S_FOLDERS[1] / 'web.yaml').read_text())
    template = (ROOT / 'web' / 'nginx' / 'default.conf.template').read_text()
    assert set(re.findall(r'\$\{(\w+)\}', template)) == {'NGINX_PORT', 'WEB_UPSTREAM'}
    compose = yaml.safe_load((ROOT / 'serving' / 'docker-compose.yml').read_text())
    front = compose['services']['nginx']
    assert ('../web/nginx/default.conf.template:/etc/nginx/templates/default.conf.template:ro'
            in front['volumes'])
    assert front['environment']['WEB_UPSTREAM'] == 'web:5000'
    assert 'ports' not in compose['services']['web']


def test_web_requirements_pin_requirements_versions_without_tensorflow():
    web = _requirements(WEB_REQUIREMENTS)
    full = _requirements(ROOT / 'requirements.txt')
    assert set(web) == WEB_PACKAGES
    for name, version in web.items():
        assert full.get(name) == version, f'requirements-web.txt: {name}=={version}, {full}'
        assert not FORBIDDEN.match(name), name


def test_web_dockerfile_installs_only_web_requirements():
    text = (ROOT / 'web' / 'Dockerfile').read_text()
    installs = re.findall(r'pip install [^\n]*', text)
    assert installs == ['pip install --no-cache-dir -r requirements-web.txt'], installs
    assert 'requirements.txt' not in text.replace('requirements-web.txt', '')


def test_web_imports_only_web_requirements():
    """The web app's import closure holds no TensorFlow nor other trainer-only package."""
    code = ('import sys, web.app; '
            'print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                         timeout=240, check=True).stdout.split()
    assert not [m for m in out if FORBIDDEN.match(m) or m == 'tensorflow_serving'], out
