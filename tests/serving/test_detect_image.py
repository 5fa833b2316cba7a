"""python -m serving.detect_image: through a server or straight from an export; annotated images."""
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from export import saved_model_writer
from serving import detect_image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = ['background', 'circle', 'square']


def test_prints_and_writes_annotated_images(toy_server, tmp_path, capsys):
    picture = np.random.RandomState(5).randint(0, 256, [20, 40, 3], dtype=np.uint8)
    good = str(tmp_path / 'a.png')
    cv2.imwrite(good, picture)
    bad = str(tmp_path / 'b.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not an image')
    out_dir = str(tmp_path / 'out')
    code = detect_image.main(['--server=%s' % toy_server[0], '--score_threshold=0',
                              '--output_dir=%s' % out_dir, good, bad,
                              str(tmp_path / 'missing.jpg')])
    captured = capsys.readouterr()
    assert code == 1
    assert 'a.png: 40x20, ' in captured.out and 'version 1' in captured.out
    assert 'b.jpg: error: cannot identify the image format' in captured.err
    assert 'missing.jpg: error:' in captured.err
    assert os.listdir(out_dir) == ['a_detections.jpg']
    assert cv2.imread(os.path.join(out_dir, 'a_detections.jpg')).shape == (20, 40, 3)


def test_server_down_exit_code(tmp_path, capsys):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.zeros([8, 8, 3], np.uint8))
    assert detect_image.main(['--server=127.0.0.1:1', '--timeout=2', path]) == 2
    assert 'UNAVAILABLE' in capsys.readouterr().err


def _export_fixed_detector(base):
    """An export whose `detect` finds one circle at [ymin .1, xmin .2, ymax .5, xmax .6], 0.9."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        encoded = tf.compat.v1.placeholder(tf.string, [None], name='encoded_images')
        batch = tf.shape(encoded)[0]
        decoded = tf.map_fn(lambda data: tf.shape(tf.io.decode_image(
            data, channels=3, expand_animations=False))[0], encoded, fn_output_signature=tf.int32)

        def tiled(value, dtype=tf.float32):
            return tf.tile(tf.constant(value, dtype)[None], [batch] + [1] * np.ndim(value))
        outputs = {'detection_boxes': tiled([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]),
                   'detection_scores': tiled([0.9, 0.2]),
                   'detection_classes': tiled([1.0, 2.0]),
                   'num_detections': tf.cast(decoded * 0 + 2, tf.float32),
                   'class_names': tiled(CLASSES, tf.string)}
        signatures = {'detect': saved_model_writer.predict_signature({'encoded_images': encoded},
                                                                     outputs)}
        return saved_model_writer.write_saved_model(session, base, signatures, 3)


@pytest.fixture
def fixed_export(tmp_path):
    base = str(tmp_path / 'exports' / 'ssd')
    _export_fixed_detector(base)
    return base


def test_saved_model_runs_without_a_server(fixed_export, tmp_path, capsys):
    folder = tmp_path / 'pictures'
    folder.mkdir()
    cv2.imwrite(str(folder / 'one.png'), np.full([100, 200, 3], 128, np.uint8))
    cv2.imwrite(str(folder / 'two.jpg'), np.full([50, 80, 3], 60, np.uint8))
    (folder / 'notes.txt').write_text('not a picture')
    out_dir = tmp_path / 'out'
    code = detect_image.main([f'--saved_model={fixed_export}', f'--output_dir={out_dir}',
                              '--score_threshold=0.5', str(folder)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert 'one.png: 200x100, 1 detections, model ssd version 3' in captured.out
    assert 'circle       0.900  [40.0, 10.0, 120.0, 50.0]' in captured.out
    assert 'two.jpg: 80x50, 1 detections' in captured.out
    assert sorted(os.listdir(out_dir)) == ['one_detections.jpg', 'two_detections.jpg']
    drawn = cv2.imread(str(out_dir / 'one_detections.jpg'))
    assert drawn.shape == (100, 200, 3) and drawn.std() > 0
    mode = stat.S_IMODE(os.stat(out_dir / 'one_detections.jpg').st_mode)
    assert mode & 0o044 == 0o044, oct(mode)  # readable by others (umask), not a private temp file


def test_saved_model_takes_the_version_folder_and_rotated_jpegs(fixed_export, tmp_path):
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'turned.jpg'
    Image.new('RGB', (200, 100), (90, 90, 90)).save(path, exif=exif.tobytes())
    with detect_image.SavedModelDetector(os.path.join(fixed_export, '3')) as detector:
        result = detector.detect(path.read_bytes())
    assert (result.width, result.height) == (100, 200)
    assert [d.class_name for d in result.detections] == ['circle']
    assert result.detections[0].box_px == pytest.approx([20.0, 20.0, 60.0, 100.0])


def test_saved_model_errors(tmp_path, toy_base, capsys):
    with pytest.raises(SystemExit):
        detect_image.main([f'--saved_model={tmp_path}', 'a.jpg'])
    assert 'holds no saved_model.pb' in capsys.readouterr().err
    with pytest.raises(ValueError, match='no "detect" signature'):
        detect_image.SavedModelDetector(_export_without_detect(tmp_path / 'nodetect'))


def _export_without_detect(base):
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        x = tf.compat.v1.placeholder(tf.float32, [None], name='x')
        signatures = {'echo': saved_model_writer.predict_signature({'x': x}, {'y': x * 2})}
        return saved_model_writer.write_saved_model(session, str(base), signatures, 1)


def test_only_the_saved_model_path_imports_tensorflow():
    """detect_image itself adds no TensorFlow import to what the gRPC client needs."""
    code = ('import sys, client.ssd_client; before = "tensorflow" in sys.modules; '
            'import serving.detect_image; assert ("tensorflow" in sys.modules) == before')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO, timeout=120)
