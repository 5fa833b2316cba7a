"""python -m serving.detect_image: printed detections and annotated images."""
import os

import cv2
import numpy as np

from serving import detect_image


def test_prints_and_writes_annotated_images(toy_server, tmp_path, capsys):
    picture = np.random.RandomState(5).randint(0, 256, [20, 40, 3], dtype=np.uint8)
    good = str(tmp_path / 'a.png')
    cv2.imwrite(good, picture)
    bad = str(tmp_path / 'b.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not an image')
    out_dir = str(tmp_path / 'out')
    code = detect_image.main(['--server=%s' % toy_server[0], '--score_threshold=0', '--output_dir=%s' % out_dir,
                              good, bad, str(tmp_path / 'missing.jpg')])
    captured = capsys.readouterr()
    assert code == 1
    assert 'a.png: 40x20, ' in captured.out and 'version 1' in captured.out
    assert 'b.jpg: error: cannot identify image format' in captured.err
    assert 'missing.jpg: error:' in captured.err
    assert os.listdir(out_dir) == ['a_detections.jpg']
    assert cv2.imread(os.path.join(out_dir, 'a_detections.jpg')).shape == (20, 40, 3)


def test_server_down_exit_code(tmp_path, capsys):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.zeros([8, 8, 3], np.uint8))
    assert detect_image.main(['--server=127.0.0.1:1', '--timeout=2', path]) == 2
    assert 'UNAVAILABLE' in capsys.readouterr().err
