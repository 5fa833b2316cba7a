import cv2
import pytest

from common import labels
from datasets import make_shapes_dataset, voc_xml


def test_voc_layout_and_lists(shapes_voc):
    main = shapes_voc / 'ImageSets' / 'Main'
    trainval = main.joinpath('trainval.txt').read_text().split()
    test = main.joinpath('test.txt').read_text().split()
    assert len(trainval) == 24 and len(test) == 8 and trainval[0] == 'trainval_000000'
    for image_id in trainval + test:
        assert (shapes_voc / 'JPEGImages' / (image_id + '.jpg')).is_file()
        assert (shapes_voc / 'Annotations' / (image_id + '.xml')).is_file()
    assert labels.read_labels(str(shapes_voc / 'labels.txt')) == {
        0: 'background', 1: 'circle', 2: 'square', 3: 'triangle', 4: 'star', 5: 'cross'}


def test_xml_matches_the_real_jpeg(shapes_voc):
    for xml in sorted((shapes_voc / 'Annotations').glob('*.xml')):
        annotation = voc_xml.parse_annotation(str(xml))
        data = (shapes_voc / 'JPEGImages' / annotation.filename).read_bytes()
        assert data[:2] == b'\xff\xd8'
        image = cv2.imread(str(shapes_voc / 'JPEGImages' / annotation.filename),
                           cv2.IMREAD_UNCHANGED)
        assert image.shape[:2] == (annotation.height, annotation.width)
        assert (1 if image.ndim == 2 else 3) == annotation.depth
        assert 1 <= len(annotation.objects) <= 6
        for obj in annotation.objects:
            assert 1 <= obj.xmin <= obj.xmax <= annotation.width
            assert 1 <= obj.ymin <= obj.ymax <= annotation.height


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (('a', 7), ('b', 7), ('c', 8)):
        make_shapes_dataset.make_dataset(str(tmp_path / name), 3, 1, seed)
    for image_id in ('trainval_000002', 'test_000000'):
        a, b, c = (tmp_path.joinpath(n, 'JPEGImages', image_id + '.jpg').read_bytes()
                   for n in 'abc')
        assert a == b and a != c


def test_parallel_generation_gives_identical_files(tmp_path):
    make_shapes_dataset.make_dataset(str(tmp_path / 'one'), 6, 2, 4, num_workers=1)
    make_shapes_dataset.make_dataset(str(tmp_path / 'two'), 6, 2, 4, num_workers=2)
    for path in sorted((tmp_path / 'one').rglob('*.*')):
        twin = tmp_path / 'two' / path.relative_to(tmp_path / 'one')
        assert path.read_bytes() == twin.read_bytes()


def test_cli_writes_the_set_and_rejects_bad_flags(tmp_path, capsys):
    assert make_shapes_dataset.main(['--output_dir', str(tmp_path), '--num_train', '2',
                                     '--num_test', '1', '--seed', '1']) == 0
    assert 'wrote 2 trainval + 1 test images' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        make_shapes_dataset.main(['--output_dir', str(tmp_path), '--num_train', '-1'])
    assert exit_info.value.code == 2
    assert '--num_train must be >= 0' in capsys.readouterr().err
