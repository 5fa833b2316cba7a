"""The real TF Serving files: models.config parses as ModelServerConfig, compose mounts what it
names."""
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'serving')


def _read(name):
    with open(os.path.join(SERVING_DIR, name)) as f:
        return f.read()


def test_models_config_parses():
    config = text_format.Parse(_read('models.config'), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ('ssd', '/models/ssd',
                                                                   'tensorflow')
    assert model.model_version_policy.latest.num_versions == 1


def test_compose_mounts_configs_and_export():
    compose = _read('docker-compose.yml')
    for text in ['../exports/ssd:/models/ssd:ro', './models.config:/models/models.config:ro',
                 './batching.config:/models/batching.config:ro',
                 '--model_config_file=/models/models.config',
                 '--batching_parameters_file=/models/batching.config', '"8500:8500"', '"8501:8501"',
                 'SERVING_ADDRESS: tfserving:8500']:
        assert text in compose, text
    batching = _read('batching.config')
    for field in ['max_batch_size', 'batch_timeout_micros', 'num_batch_threads']:
        assert field + ' { value: ' in batching
