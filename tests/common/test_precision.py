"""Tests of common/precision.py: the flag, the machine checks and the session options as text."""
import argparse

import pytest

from common import precision

# /proc/cpuinfo flags of four kinds of machine: Cascade Lake (AVX-512 without bfloat16),
# Cooper Lake (AVX512_BF16, as the AMD EPYC of our machines), Sapphire Rapids (AMX) and a
# laptop with AVX2 only.
CASCADE_LAKE = frozenset('fpu sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl '
                         'avx512_vnni'.split())
SAPPHIRE_RAPIDS = CASCADE_LAKE | {'avx512_bf16', 'amx_bf16', 'amx_tile', 'amx_int8'}
COOPER_LAKE = CASCADE_LAKE | {'avx512_bf16'}
AVX2_ONLY = frozenset('fpu sse2 avx avx2 fma'.split())
NO_ENV = {}


def test_flag_choices_and_default():
    parser = argparse.ArgumentParser()
    precision.add_flag(parser)
    assert parser.parse_args([]).precision == 'float32'
    assert parser.parse_args(['--precision=mixed_bfloat16']).precision == 'mixed_bfloat16'
    with pytest.raises(SystemExit):
        parser.parse_args(['--precision=float16'])


def test_cpu_flags_of_a_cpuinfo_file(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx512f avx512_bf16\n'
                       'processor\t: 1\nflags\t\t: fpu\n')
    assert precision.cpu_flags(str(cpuinfo)) == {'fpu', 'avx512f', 'avx512_bf16'}
    assert precision.cpu_flags(str(tmp_path / 'missing')) is None


def test_onednn_follows_tensorflows_rule():
    assert precision.onednn_enabled(CASCADE_LAKE, NO_ENV)
    assert not precision.onednn_enabled(AVX2_ONLY, NO_ENV)
    assert precision.onednn_enabled(AVX2_ONLY, {'TF_ENABLE_ONEDNN_OPTS': '1'})
    assert not precision.onednn_enabled(SAPPHIRE_RAPIDS, {'TF_ENABLE_ONEDNN_OPTS': '0'})
    assert not precision.onednn_enabled(None, NO_ENV)


@pytest.mark.parametrize('flags', [CASCADE_LAKE, SAPPHIRE_RAPIDS, AVX2_ONLY, None])
def test_float32_runs_everywhere(flags):
    assert precision.check('float32', 0, flags, NO_ENV) == []


def test_mixed_float16_needs_a_gpu():
    with pytest.raises(ValueError, match='mixed_float16 needs a GPU: TensorFlow sees none'):
        precision.check('mixed_float16', 0, SAPPHIRE_RAPIDS, NO_ENV)
    assert precision.check('mixed_float16', 1, AVX2_ONLY, NO_ENV) == []


@pytest.mark.parametrize('flags', [SAPPHIRE_RAPIDS, COOPER_LAKE])
def test_mixed_bfloat16_on_cpus_with_bfloat16(flags):
    assert precision.check('mixed_bfloat16', 0, flags, NO_ENV) == []


def test_mixed_bfloat16_emulated_with_avx512_is_a_warning():
    (warning,) = precision.check('mixed_bfloat16', 0, CASCADE_LAKE, NO_ENV)
    assert 'no bfloat16 instructions (avx512_bf16 or amx_bf16' in warning
    assert 'slower than float32' in warning


@pytest.mark.parametrize('num_gpus, flags, environ, message', [
    (0, AVX2_ONLY, {'TF_ENABLE_ONEDNN_OPTS': '1'}, 'or at least AVX-512.*has neither'),
    (0, AVX2_ONLY, NO_ENV, 'oneDNN CPU ops, which are off'),
    (0, SAPPHIRE_RAPIDS, {'TF_ENABLE_ONEDNN_OPTS': '0'}, 'TF_ENABLE_ONEDNN_OPTS=0'),
    (2, SAPPHIRE_RAPIDS, NO_ENV, 'sees 2 GPU.*use --precision=mixed_float16'),
])
def test_mixed_bfloat16_refusals(num_gpus, flags, environ, message):
    with pytest.raises(ValueError, match=message):
        precision.check('mixed_bfloat16', num_gpus, flags, environ)


def test_unknown_cpu_flags_warn():
    (warning,) = precision.check('mixed_bfloat16', 0, frozenset(), {'TF_ENABLE_ONEDNN_OPTS': '1'})
    assert 'could not read the CPU flags' in warning


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match='float32, mixed_bfloat16, mixed_float16'):
        precision.check('float64', 0, CASCADE_LAKE, NO_ENV)
    with pytest.raises(ValueError, match='unknown precision'):
        precision.session_config_text('half')


def test_session_config_text():
    assert precision.session_config_text('float32') == ''
    assert precision.session_config_text('mixed_bfloat16') == (
        'graph_options { rewrite_options { auto_mixed_precision_onednn_bfloat16: ON } }')
    assert 'auto_mixed_precision: ON' in precision.session_config_text('mixed_float16')


def test_platform_config_text_has_the_rewrite_and_the_batching():
    text = precision.platform_config_text('mixed_bfloat16', '# comment\nmax_batch_size { value: 8 }'
                                                            '  # eight\n\n')
    assert 'auto_mixed_precision_onednn_bfloat16: ON' in text
    assert 'batching_parameters {\n            max_batch_size { value: 8 }\n          }' in text
    assert '#' not in text
    assert text.count('{') == text.count('}')
    assert 'batching_parameters' not in precision.platform_config_text('mixed_bfloat16')
    assert 'session_config' not in precision.platform_config_text('float32')


def test_keep_float32_environment_empties_the_converting_lists_of_the_ops():
    ops = ('Relu6', 'FusedBatchNormV3')
    variables = precision.keep_float32_environment('mixed_bfloat16', ops, environ={})
    assert variables == {
        'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_ALLOWLIST_REMOVE': 'Relu6,FusedBatchNormV3',
        'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE': 'Relu6,FusedBatchNormV3',
        'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_CLEARLIST_REMOVE': 'Relu6,FusedBatchNormV3'}
    for other in ('float32', 'mixed_float16'):
        assert precision.keep_float32_environment(other, ops, environ={}) == {}
    assert precision.keep_float32_environment('mixed_bfloat16', (), environ={}) == {}


def test_keep_float32_environment_leaves_the_users_variables():
    users = {'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_CLEARLIST_REMOVE': ''}
    variables = precision.keep_float32_environment('mixed_bfloat16', ('Relu6',), environ=users)
    assert sorted(variables) == ['TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_ALLOWLIST_REMOVE',
                                 'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE']
