"""Precision-recall curve pictures (matplotlib figures without pyplot), written atomically."""
import io
import os
import re

from matplotlib.figure import Figure

from common.files import atomic_write


def _safe_name(name):
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name) or 'class'


def _save(figure, path):
    """Writes `figure` as a PNG at `path` (atomically)."""
    data = io.BytesIO()
    figure.savefig(data, dpi=100, format='png')
    atomic_write(path, data.getvalue())


def _plot(axes, result, label):
    recall = [0.0] + list(result['recall'])
    precision = [1.0] + list(result['precision'])
    axes.plot(recall, precision, drawstyle='steps-post', label=label)


def _style(axes, title):
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xlabel('recall')
    axes.set_ylabel('precision')
    axes.set_title(title)
    axes.grid(True, alpha=0.3)


def write_pr_curves(output_dir, per_class, title_suffix=''):
    """One PNG per class with ground truth plus `pr_curves.png` with all of them.

    Args:
        output_dir: folder (created if needed).
        per_class: dict name -> {'precision': [D], 'recall': [D], 'ap_voc07', 'ap_voc12',
            'num_gt'} as VOCEvaluator.evaluate() gives.
        title_suffix: appended to the titles (e.g. the checkpoint step).

    Returns:
        list of written paths, the combined picture first.
    """
    os.makedirs(output_dir, exist_ok=True)
    classes = [(name, r) for name, r in per_class.items() if r['num_gt'] > 0]
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    for name, r in classes:
        _plot(axes, r, '%s (AP07 %.3f, AP12 %.3f)' % (name, r['ap_voc07'], r['ap_voc12']))
    _style(axes, 'Precision-recall, all classes' + title_suffix)
    axes.legend(loc='lower left', fontsize='small')
    paths = [os.path.join(output_dir, 'pr_curves.png')]
    _save(figure, paths[0])
    for name, r in classes:
        figure = Figure(figsize=(6, 5))
        axes = figure.subplots()
        _plot(axes, r, name)
        _style(axes, '%s: AP VOC07 %.3f, VOC12 %.3f%s' % (name, r['ap_voc07'], r['ap_voc12'],
                                                          title_suffix))
        path = os.path.join(output_dir, 'pr_%s.png' % _safe_name(name))
        _save(figure, path)
        paths.append(path)
    return paths
