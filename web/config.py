"""Configuration of the web app: defaults, then a mapping, then environment variables."""
import os

from common import images, normalization, np_post_processing, serving_address, signatures

# Settings and their defaults; each can be set by an environment variable of the same name.
DEFAULTS = {
    'SERVING_ADDRESS': 'localhost:8500',
    'MODEL_NAME': signatures.DEFAULT_MODEL_NAME,
    # Pin a version number or a version label (TF Serving's model_spec.version / version_label);
    # unset: the latest version each replica serves. The JSON answer names the version used.
    'MODEL_VERSION': None,
    'MODEL_VERSION_LABEL': None,
    'SIGNATURE': signatures.DEFAULT_SIGNATURE,
    # How to normalise the input of an export without a manifest (a common.normalization
    # kind); an export's manifest says it otherwise, and a set value is checked against it.
    'NORMALIZATION': None,
    'LABELS_FILE': None,
    'SERVING_TIMEOUT': 10.0,
    # Deadline of one attempt when SERVING_ADDRESS lists several replicas (unset: a third of
    # SERVING_TIMEOUT): a hung replica costs one attempt, then the call goes to another one.
    'SERVING_ATTEMPT_TIMEOUT': None,
    'SERVING_RETRIES': 3,
    'MAX_UPLOAD_MB': 10.0,
    'MAX_IMAGE_PIXELS': images.MAX_PIXELS,
    # Pixels one worker process decodes at once (concurrent uploads beyond it wait their turn).
    'DECODE_PIXEL_BUDGET': images.MAX_PIXELS,
    'SCORE_THRESHOLD': np_post_processing.DISPLAY_THRESHOLD,
    'RETRY_AFTER_S': 5,
    # Shown under the model's class list, e.g. what the model was trained on.
    'MODEL_HINT': '',
}


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


def _positive_float(name, text):
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f'{name}={text!r} is not a number') from None
    if not value > 0:
        raise ConfigError(f'{name}={text!r} must be > 0')
    return value


def _positive_int(name, text):
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f'{name}={text!r} is not an integer') from None
    if value < 1:
        raise ConfigError(f'{name}={text!r} must be >= 1')
    return value


def _non_negative_int(name, text):
    if str(text).strip() == '0':
        return 0
    return _positive_int(name, text)


def _fraction(name, text):
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f'{name}={text!r} is not a number') from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f'{name}={text!r} must be between 0 and 1')
    return value


def _address(name, text):
    """host:port, a list of them (h1:8500,h2:8500) or a gRPC name (dns:///svc:8500)."""
    try:
        serving_address.parse(text)
    except serving_address.AddressError as e:
        raise ConfigError(f'{name}: {e} (e.g. localhost:8500)') from None
    return str(text).strip()


def _non_empty(name, text):
    if not str(text).strip():
        raise ConfigError(f'{name} must not be empty')
    return str(text).strip()


def _text(name, text):
    return str(text).strip()


def _normalization(name, text):
    text = str(text).strip()
    if text not in normalization.KINDS:
        raise ConfigError(f'{name}={text!r} is not one of {", ".join(sorted(normalization.KINDS))}')
    return text


def _existing_file(name, text):
    if not text:
        return None
    if not os.path.isfile(text):
        raise ConfigError(f'{name}={text!r}: no such file')
    return text


PARSERS = {
    'SERVING_ADDRESS': _address,
    'MODEL_NAME': _non_empty,
    'MODEL_VERSION': _positive_int,
    'MODEL_VERSION_LABEL': _non_empty,
    'SIGNATURE': _non_empty,
    'NORMALIZATION': _normalization,
    'LABELS_FILE': _existing_file,
    'SERVING_TIMEOUT': _positive_float,
    'SERVING_ATTEMPT_TIMEOUT': _positive_float,
    'SERVING_RETRIES': _non_negative_int,
    'MAX_UPLOAD_MB': _positive_float,
    'MAX_IMAGE_PIXELS': _positive_int,
    'DECODE_PIXEL_BUDGET': _positive_int,
    'SCORE_THRESHOLD': _fraction,
    'RETRY_AFTER_S': _positive_int,
    'MODEL_HINT': _text,
}


def load_config(mapping=None, environ=None):
    """Returns the validated settings.

    Args:
      mapping: optional dict overriding DEFAULTS (e.g. a test config); keys
        not in DEFAULTS (such as CLIENT or TESTING) are passed through.
      environ: environment to read (default os.environ); a set variable wins.

    Raises:
      ConfigError: naming the first invalid variable.
    """
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    config.update(mapping or {})
    for name, parse in PARSERS.items():
        if environ.get(name) not in (None, ''):
            config[name] = environ[name]
        if config[name] is not None:
            config[name] = parse(name, config[name])
    attempt = config['SERVING_ATTEMPT_TIMEOUT']
    if attempt is not None and attempt > config['SERVING_TIMEOUT']:
        raise ConfigError(f'SERVING_ATTEMPT_TIMEOUT={attempt} must be <= SERVING_TIMEOUT='
                          f'{config["SERVING_TIMEOUT"]} (one attempt within the call)')
    if config['MODEL_VERSION'] is not None and config['MODEL_VERSION_LABEL'] is not None:
        raise ConfigError('set MODEL_VERSION or MODEL_VERSION_LABEL, not both (got '
                          f'{config["MODEL_VERSION"]} and {config["MODEL_VERSION_LABEL"]!r})')
    return config
