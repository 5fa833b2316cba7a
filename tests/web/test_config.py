"""Settings: defaults, then the mapping, then environment variables, each validated."""
import pytest

from web import create_app
from web.config import DEFAULTS, ConfigError, load_config


def test_defaults():
    config = load_config(environ={})
    assert config == DEFAULTS
    assert config['SERVING_ADDRESS'] == 'localhost:8500' and config['MODEL_NAME'] == 'ssd'


def test_mapping_then_environment():
    config = load_config({'MODEL_NAME': 'from-mapping', 'SCORE_THRESHOLD': 0.2, 'TESTING': True},
                         environ={'MODEL_NAME': 'from-env', 'MAX_UPLOAD_MB': '2.5',
                                  'MAX_IMAGE_PIXELS': '1000', 'SERVING_ADDRESS': 'model:9000'})
    assert config['MODEL_NAME'] == 'from-env'
    assert config['SCORE_THRESHOLD'] == 0.2
    assert config['MAX_UPLOAD_MB'] == 2.5
    assert config['MAX_IMAGE_PIXELS'] == 1000
    assert config['SERVING_ADDRESS'] == 'model:9000'
    assert config['TESTING'] is True


@pytest.mark.parametrize('value', ['h1:8500,h2:8500', 'dns:///tfserving.default.svc:8500',
                                   'ipv4:127.0.0.1:8500,127.0.0.1:8501'])
def test_serving_address_takes_replica_lists_and_grpc_names(value):
    assert load_config(environ={'SERVING_ADDRESS': value})['SERVING_ADDRESS'] == value


def test_version_pins():
    assert load_config(environ={'MODEL_VERSION': '3'})['MODEL_VERSION'] == 3
    assert load_config(environ={'MODEL_VERSION_LABEL': 'canary'})['MODEL_VERSION_LABEL'] == 'canary'
    with pytest.raises(ConfigError, match='MODEL_VERSION'):
        load_config(environ={'MODEL_VERSION': '0'})
    with pytest.raises(ConfigError, match='not both'):
        load_config(environ={'MODEL_VERSION': '3', 'MODEL_VERSION_LABEL': 'stable'})


def test_create_app_passes_the_pins_to_the_client(unused_address):
    app = create_app({'TESTING': True, 'SERVING_ADDRESS': unused_address,
                      'MODEL_VERSION_LABEL': 'canary'})
    client = app.extensions['ssd_client']
    assert (client.version, client.version_label) == (None, 'canary')
    client.close()


def test_empty_environment_value_is_ignored():
    assert load_config(environ={'MODEL_NAME': ''})['MODEL_NAME'] == 'ssd'


@pytest.mark.parametrize('name, value, message', [
    ('SERVING_ADDRESS', 'localhost', 'host:port'),
    ('SERVING_ADDRESS', 'localhost:99999', 'host:port'),
    ('SERVING_ADDRESS', 'h1:8500,h2', "'h2' is not host:port"),
    ('SERVING_ADDRESS', 'dns://svc:8500', 'dns:///name:port'),
    ('MAX_UPLOAD_MB', 'ten', 'not a number'),
    ('MAX_UPLOAD_MB', '0', 'must be > 0'),
    ('MAX_IMAGE_PIXELS', '1.5', 'not an integer'),
    ('MAX_IMAGE_PIXELS', '-3', 'must be >= 1'),
    ('SCORE_THRESHOLD', '1.2', 'between 0 and 1'),
    ('SERVING_TIMEOUT', 'x', 'not a number'),
    ('LABELS_FILE', '/no/such/labels.txt', 'no such file'),
    ('MODEL_NAME', '   ', 'must not be empty'),
    ('DECODE_PIXEL_BUDGET', '0', 'must be >= 1'),
])
def test_invalid_environment_names_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=name) as error:
        load_config(environ={name: value})
    assert message in str(error.value)


def test_create_app_reads_environment(monkeypatch, fake_client):
    monkeypatch.setenv('MAX_UPLOAD_MB', '3')
    monkeypatch.setenv('SCORE_THRESHOLD', '0.7')
    app = create_app({'CLIENT': fake_client})
    assert app.config['SCORE_THRESHOLD'] == 0.7
    assert app.config['MAX_CONTENT_LENGTH'] == 3 * 2**20 + 64 * 1024
    assert app.extensions['ssd_client'] is fake_client
    assert 'CLIENT' not in app.config


def test_create_app_makes_one_client_from_config(unused_address):
    app = create_app({'SERVING_ADDRESS': unused_address, 'MODEL_NAME': 'm', 'SIGNATURE': 'detect',
                      'SERVING_TIMEOUT': 3, 'MAX_IMAGE_PIXELS': 1234})
    client = app.extensions['ssd_client']
    assert (client.address, client.model_name, client.signature, client.timeout,
            client.max_pixels) == (
        unused_address, 'm', 'detect', 3.0, 1234)


def test_create_app_rejects_bad_environment(monkeypatch):
    monkeypatch.setenv('SCORE_THRESHOLD', 'high')
    with pytest.raises(ConfigError, match='SCORE_THRESHOLD'):
        create_app()


def test_attempt_timeout_fits_in_the_call():
    assert load_config(environ={'SERVING_ATTEMPT_TIMEOUT': '2'})['SERVING_ATTEMPT_TIMEOUT'] == 2.0
    with pytest.raises(ConfigError, match='SERVING_ATTEMPT_TIMEOUT=20.0 must be <= SERVING_'):
        load_config(environ={'SERVING_ATTEMPT_TIMEOUT': '20'})
