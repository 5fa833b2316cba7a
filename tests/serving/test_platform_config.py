"""serving/platform_config_bfloat16.txt: up to date, and a valid TF Serving PlatformConfigMap.

The pip package tensorflow-serving-api has PlatformConfigMap but not the source adapter
messages its Any holds, so the test declares SavedModelBundleSourceAdapterConfig,
SessionBundleConfig and BatchingParameters with TF Serving's field names and numbers
(tensorflow_serving/servables/tensorflow/*.proto) in a descriptor pool of its own.
"""
import os

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow_serving.config import platform_config_pb2

from common import precision

SERVING_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'serving')
ON = rewriter_config_pb2.RewriterConfig.ON


def _read(name):
    with open(os.path.join(SERVING_DIR, name), encoding='utf-8') as f:
        return f.read()


def _add_with_dependencies(pool, file_descriptor, added):
    for dependency in file_descriptor.dependencies:
        _add_with_dependencies(pool, dependency, added)
    if file_descriptor.name not in added:
        proto = descriptor_pb2.FileDescriptorProto()
        file_descriptor.CopyToProto(proto)
        pool.Add(proto)
        added.add(file_descriptor.name)


def _serving_pool():
    """A pool with ConfigProto, PlatformConfigMap and TF Serving's source adapter messages."""
    pool = descriptor_pool.DescriptorPool()
    added = set()
    for module in (wrappers_pb2, config_pb2, platform_config_pb2):
        _add_with_dependencies(pool, module.DESCRIPTOR, added)
    proto = descriptor_pb2.FileDescriptorProto(
        name='test/session_bundle_config.proto', package='tensorflow.serving', syntax='proto3',
        dependency=['google/protobuf/wrappers.proto', 'tensorflow/core/protobuf/config.proto'])
    field = descriptor_pb2.FieldDescriptorProto
    int64 = '.google.protobuf.Int64Value'
    batching = proto.message_type.add(name='BatchingParameters')
    for number, name in enumerate(['max_batch_size', 'batch_timeout_micros',
                                   'max_enqueued_batches', 'num_batch_threads'], start=1):
        batching.field.add(name=name, number=number, type=field.TYPE_MESSAGE, type_name=int64)
    batching.field.add(name='pad_variable_length_inputs', number=7, type=field.TYPE_BOOL)
    bundle = proto.message_type.add(name='SessionBundleConfig')
    bundle.field.add(name='session_config', number=2, type=field.TYPE_MESSAGE,
                     type_name='.tensorflow.ConfigProto')
    bundle.field.add(name='batching_parameters', number=3, type=field.TYPE_MESSAGE,
                     type_name='.tensorflow.serving.BatchingParameters')
    adapter = proto.message_type.add(name='SavedModelBundleSourceAdapterConfig')
    adapter.field.add(name='legacy_config', number=1000, type=field.TYPE_MESSAGE,
                      type_name='.tensorflow.serving.SessionBundleConfig')
    pool.Add(proto)
    return pool


def _parse(text):
    """(SessionBundleConfig of the "tensorflow" platform, its ConfigProto as bytes)."""
    pool = _serving_pool()
    config_map = message_factory.GetMessageClass(
        pool.FindMessageTypeByName('tensorflow.serving.PlatformConfigMap'))()
    text_format.Parse(text, config_map, descriptor_pool=pool)
    adapter = message_factory.GetMessageClass(
        pool.FindMessageTypeByName('tensorflow.serving.SavedModelBundleSourceAdapterConfig'))()
    assert config_map.platform_configs['tensorflow'].source_adapter_config.Unpack(adapter)
    legacy = adapter.legacy_config
    return legacy, config_pb2.ConfigProto.FromString(legacy.session_config.SerializeToString())


def test_shipped_file_is_the_generated_one():
    shipped = _read(precision.PLATFORM_CONFIG_FILE)
    body = ''.join(line for line in shipped.splitlines(True) if not line.startswith('#'))
    assert body == precision.platform_config_text('mixed_bfloat16', _read('batching.config'))


def test_shipped_file_turns_on_the_rewrite_and_keeps_the_batching():
    legacy, session_config = _parse(_read(precision.PLATFORM_CONFIG_FILE))
    assert session_config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == ON
    batching = legacy.batching_parameters
    assert (batching.max_batch_size.value, batching.batch_timeout_micros.value,
            batching.num_batch_threads.value) == (8, 2000, 4)


def test_float16_platform_config():
    _, session_config = _parse(precision.platform_config_text('mixed_float16'))
    assert session_config.graph_options.rewrite_options.auto_mixed_precision == ON
