"""The --precision flag of every script and of the model server, without TensorFlow.

    float32          every op in float32 (the default).
    mixed_bfloat16   TensorFlow's oneDNN graph rewrite (`auto_mixed_precision_onednn_bfloat16`):
                     the ops placed on the CPU that its allow list names (convolutions, matmuls)
                     and the ops between them run in bfloat16.
    mixed_float16    TensorFlow's GPU graph rewrite (`auto_mixed_precision`), float16 on the GPU;
                     training adds dynamic loss scaling (nets/precision.py).

Both rewrites leave variables float32 (the graph casts what it reads) and keep the ops of their
deny lists, such as softmax, exp, the losses and the sums of the box decoding, in float32;
non-maximum suppression has no bfloat16 or float16 kernel. Checkpoints and SavedModels stay
float32: the precision is an option of the session that runs a graph, so one export serves in
float32 on one machine and in bfloat16 on another. This module writes those options as text
(a ConfigProto, and TF Serving's platform config) and checks that this machine can run them.
"""
import os

FLOAT32 = 'float32'
MIXED_BFLOAT16 = 'mixed_bfloat16'
MIXED_FLOAT16 = 'mixed_float16'
PRECISIONS = (FLOAT32, MIXED_BFLOAT16, MIXED_FLOAT16)

# The RewriterConfig field each mixed precision turns ON.
REWRITES = {MIXED_BFLOAT16: 'auto_mixed_precision_onednn_bfloat16',
            MIXED_FLOAT16: 'auto_mixed_precision'}
# The dtype the rewrite gives the ops it converts.
LOW_DTYPES = {MIXED_BFLOAT16: 'bfloat16', MIXED_FLOAT16: 'float16'}

CPUINFO = '/proc/cpuinfo'
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
"""CPU flags of bfloat16 instructions (Cooper Lake's AVX512_BF16, Sapphire Rapids' AMX)."""

AVX512_CORE_FLAGS = ('avx512f', 'avx512bw', 'avx512vl', 'avx512dq')
"""oneDNN's avx512_core: without BF16_CPU_FLAGS it emulates bfloat16 with these (slowly)."""

ONEDNN_DEFAULT_FLAGS = ('avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8',
                        'amx_bf16')
"""On Linux, TensorFlow turns its oneDNN ops on by default for CPUs with one of these flags;
TF_ENABLE_ONEDNN_OPTS=1 or 0 overrides that."""

_FALSE = ('0', 'false', 'no', 'off')

PLATFORM_CONFIG_FILE = 'platform_config_bfloat16.txt'
"""The TF Serving platform config shipped beside serving/models.config."""

EXPORT_PLATFORM_CONFIG = 'assets.extra/tf_serving_platform_config.txt'
"""In an export made with --precision other than float32: the platform config (without
batching) that loads it in that precision, relative to the version folder."""


def add_flag(group, default=FLOAT32, choices=PRECISIONS, help=None):  # noqa: A002
    """Adds --precision to an argparse parser or argument group (`help` replaces the usual
    text)."""
    group.add_argument('--precision', default=default, choices=choices,
                       help=help or 'float32, or TensorFlow\'s mixed precision graph rewrite: '
                       'mixed_bfloat16 (CPUs with bfloat16 instructions) or mixed_float16 '
                       '(GPUs); variables, losses, box decoding and NMS stay float32 '
                       '(default %(default)s)')


def cpu_flags(path=CPUINFO):
    """The flags of the first CPU in /proc/cpuinfo, or None when it cannot be read."""
    try:
        with open(path, encoding='utf-8', errors='replace') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        return None
    return None


def onednn_enabled(flags, environ=None):
    """Whether TensorFlow (Linux x86 wheel) runs its oneDNN ops, as it decides at start-up.

    Args:
      flags: CPU flags (cpu_flags()), or None when unknown.
      environ: mapping of environment variables (default os.environ).
    """
    setting = (os.environ if environ is None else environ).get('TF_ENABLE_ONEDNN_OPTS')
    if setting is not None and setting.strip():
        return setting.strip().lower() not in _FALSE
    return bool(flags) and any(flag in flags for flag in ONEDNN_DEFAULT_FLAGS)


def check(precision, num_gpus, flags=None, environ=None):
    """Whether this machine can run `precision`.

    Args:
      precision: one of PRECISIONS.
      num_gpus: GPUs TensorFlow sees.
      flags: CPU flags (default: read /proc/cpuinfo); None or empty when unknown.
      environ: environment variables (default os.environ).

    Returns:
      list of warnings (str) to log; empty when the precision runs natively.

    Raises:
      ValueError: the precision cannot run here, with the reason and what to use instead.
    """
    if precision not in PRECISIONS:
        raise ValueError('--precision must be one of %s, got %r' % (', '.join(PRECISIONS),
                                                                   precision))
    if precision == FLOAT32:
        return []
    if flags is None:
        flags = cpu_flags()
    if precision == MIXED_FLOAT16:
        if num_gpus < 1:
            raise ValueError(
                '--precision=mixed_float16 needs a GPU: TensorFlow sees none on this machine, '
                'and its float16 rewrite only converts ops placed on a GPU; use '
                '--precision=float32, or mixed_bfloat16 on a CPU with bfloat16 instructions '
                '(%s)' % ' or '.join(BF16_CPU_FLAGS))
        return []
    if num_gpus:
        raise ValueError(
            '--precision=mixed_bfloat16 is TensorFlow\'s oneDNN rewrite of the ops placed on the '
            'CPU, but TensorFlow sees %d GPU(s) here and places the network there, where it would '
            'stay float32: use --precision=mixed_float16 on GPUs, or hide them '
            '(CUDA_VISIBLE_DEVICES=) to run bfloat16 on the CPU' % num_gpus)
    if not onednn_enabled(flags, environ):
        raise ValueError(
            '--precision=mixed_bfloat16 needs TensorFlow\'s oneDNN CPU ops, which are off here '
            '(TF_ENABLE_ONEDNN_OPTS=%s; without it TensorFlow turns them on only for CPUs with '
            'one of %s)' % ((os.environ if environ is None else environ).get(
                'TF_ENABLE_ONEDNN_OPTS', '<unset>'), ', '.join(ONEDNN_DEFAULT_FLAGS)))
    if not flags:
        return ['--precision=mixed_bfloat16: could not read the CPU flags (%s) to check for '
                'bfloat16 instructions (%s); without them oneDNN emulates bfloat16, slower '
                'than float32' % (CPUINFO, ', '.join(BF16_CPU_FLAGS))]
    if any(flag in flags for flag in BF16_CPU_FLAGS):
        return []
    if all(flag in flags for flag in AVX512_CORE_FLAGS):
        return ['--precision=mixed_bfloat16: this CPU has no bfloat16 instructions (%s in %s), '
                'so oneDNN emulates bfloat16 with AVX-512: the numbers are those of bfloat16 but '
                'it runs slower than float32 (bench/nets.py measures by how much); use it to '
                'check a model for a bfloat16 CPU, not for speed'
                % (' or '.join(BF16_CPU_FLAGS), CPUINFO)]
    raise ValueError(
        '--precision=mixed_bfloat16 needs a CPU with bfloat16 instructions (%s) or at least '
        'AVX-512 (%s) for oneDNN to emulate them; this CPU has neither (%s): use '
        '--precision=float32' % (', '.join(BF16_CPU_FLAGS), ', '.join(AVX512_CORE_FLAGS),
                                 CPUINFO))


REWRITE_LIST_VARIABLE = 'TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_%s_REMOVE'
"""TensorFlow reads these when it rewrites a graph: op types to take out of one of its lists."""
CONVERTING_LISTS = ('ALLOWLIST', 'INFERLIST', 'CLEARLIST')
"""The rewrite's lists whose ops may run in the low precision; an op in none stays float32."""


def keep_float32_environment(precision, op_types, environ=None):
    """The environment variables keeping `op_types` in float32 under `precision`'s rewrite.

    Only mixed_bfloat16 has such lists (the network spec's bfloat16_training_float32_ops, from
    measurements on bfloat16 CPUs). A variable already set in `environ` (default os.environ) is
    the user's choice and is left out.

    Args:
      precision: one of PRECISIONS.
      op_types: TensorFlow op type names, e.g. ('FusedBatchNormV3', 'Relu6').

    Returns:
      dict variable name -> comma-separated op types; empty when nothing is to be set.
    """
    if precision != MIXED_BFLOAT16 or not op_types:
        return {}
    environ = os.environ if environ is None else environ
    names = (REWRITE_LIST_VARIABLE % name for name in CONVERTING_LISTS)
    return {name: ','.join(op_types) for name in names if name not in environ}


def session_config_text(precision):
    """The ConfigProto fields (protobuf text) that apply `precision`; '' for float32."""
    if precision not in PRECISIONS:
        raise ValueError('unknown precision %r; choose one of %s' % (precision,
                                                                     ', '.join(PRECISIONS)))
    if precision == FLOAT32:
        return ''
    return 'graph_options { rewrite_options { %s: ON } }' % REWRITES[precision]


def platform_config_text(precision, batching_parameters=''):
    """A TF Serving platform config (--platform_config_file) loading SavedModels in `precision`.

    TF Serving ignores --enable_batching and --batching_parameters_file when it is given a
    platform config, so the batching parameters go in here.

    Args:
      precision: one of PRECISIONS.
      batching_parameters: BatchingParameters fields as protobuf text (the content of
        serving/batching.config), or '' for no server-side batching.

    Returns:
      the text of a tensorflow.serving.PlatformConfigMap.
    """
    lines = ['platform_configs {', '  key: "tensorflow"', '  value {',
             '    source_adapter_config {',
             '      [type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] {',
             '        legacy_config {']
    session = session_config_text(precision)
    if session:
        lines.append('          session_config { %s }' % session)
    fields = [line.split('#', 1)[0].strip() for line in batching_parameters.splitlines()]
    fields = [field for field in fields if field]
    if fields:
        lines.append('          batching_parameters {')
        lines.extend('            ' + field for field in fields)
        lines.append('          }')
    lines += ['        }', '      }', '    }', '  }', '}']
    return '\n'.join(lines) + '\n'
