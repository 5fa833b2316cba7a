import pytest

from datasets import pascalvoc, specs, voc_xml

SHAPES = {'circle': 1, 'star': 2}


def make_voc(root, xml_by_id):
    (root / 'ImageSets' / 'Main').mkdir(parents=True)
    (root / 'Annotations').mkdir()
    (root / 'ImageSets' / 'Main' / 'trainval.txt').write_text('\n'.join(xml_by_id) + '\n')
    for image_id, text in xml_by_id.items():
        if text is not None:
            (root / 'Annotations' / (image_id + '.xml')).write_text(text)


def obj(name, box, difficult=0, truncated=0):
    return ('<object><name>%s</name><difficult>%d</difficult><truncated>%d</truncated><bndbox>'
            '<xmin>%s</xmin><ymin>%s</ymin><xmax>%s</xmax><ymax>%s</ymax></bndbox></object>'
            % ((name, difficult, truncated) + tuple(box)))


def test_voc_labels_are_the_20_classes():
    labels = pascalvoc.voc_labels()
    assert len(labels) == 21 and labels[0] == 'background'
    assert labels[1] == 'aeroplane' and labels[15] == 'person' and labels[20] == 'tvmonitor'


def test_boxes_become_continuous_pixels_and_flags_are_kept(tmp_path):
    make_voc(tmp_path, {'a': '<annotation><size><width>40</width><height>30</height>'
                             '<depth>3</depth></size>' + obj('star', (1, 2, 40, 30), 1, 1)
                             + obj('circle', (5, 6, 5, 8)) + '</annotation>'})
    result = pascalvoc.read_split(str(tmp_path), 'trainval', SHAPES)
    (example,) = result.examples
    assert example.filename == 'a.jpg' and (example.width, example.height) == (40, 30)
    assert example.image_path == str(tmp_path / 'JPEGImages' / 'a.jpg')
    assert example.objects == [
        specs.ObjectSpec(2, 'star', (0.0, 1.0, 40.0, 30.0), 1, 1),
        specs.ObjectSpec(1, 'circle', (4.0, 5.0, 5.0, 8.0), 0, 0)]
    assert result.skipped == [] and result.unknown_class_objects == 0


def test_missing_and_malformed_annotations_are_skipped_with_reasons(tmp_path):
    make_voc(tmp_path, {'ok': '<annotation>' + obj('star', (1, 1, 2, 2)) + '</annotation>',
                        'missing': None, 'broken': '<annotation><object>'})
    result = pascalvoc.read_split(str(tmp_path), 'trainval', SHAPES)
    assert [e.filename for e in result.examples] == ['ok.jpg']
    reasons = {item['item'].rsplit('/', 1)[-1]: item['reason'] for item in result.skipped}
    assert reasons['missing.xml'] == 'missing annotation file'
    assert 'malformed XML' in reasons['broken.xml']


def test_unknown_class_is_an_error_naming_file_and_class_or_skipped(tmp_path):
    make_voc(tmp_path, {'a': '<annotation>' + obj('star', (1, 1, 2, 2))
                        + obj('dog', (1, 1, 2, 2)) + '</annotation>'})
    with pytest.raises(specs.UnknownClassError,
                       match="a.xml: object 1: unknown class 'dog'"):
        pascalvoc.read_split(str(tmp_path), 'trainval', SHAPES)
    result = pascalvoc.read_split(str(tmp_path), 'trainval', SHAPES, skip_unknown_classes=True)
    assert [o.label_text for o in result.examples[0].objects] == ['star']
    assert result.unknown_class_objects == 1


def test_missing_split_file_is_a_dataset_error(tmp_path):
    with pytest.raises(specs.DatasetError, match='test.txt: cannot read split file'):
        pascalvoc.read_split(str(tmp_path), 'test', SHAPES)


def test_reads_the_synthetic_set(shapes_voc):
    result = pascalvoc.read_split(str(shapes_voc), 'test', {n: i for i, n in enumerate(
        ('circle', 'square', 'triangle', 'star', 'cross'), 1)})
    assert len(result.examples) == 8 and not result.skipped
    first = voc_xml.parse_annotation(str(shapes_voc / 'Annotations' / 'test_000000.xml'))
    assert len(result.examples[0].objects) == len(first.objects)


def test_files_leading_out_of_the_data_set_folder_are_skipped_with_reasons(tmp_path):
    tmp_path = tmp_path.resolve()
    outside = tmp_path / 'private'
    outside.mkdir()
    (outside / 'photo.jpg').write_bytes(b'private')
    (outside / 'b.xml').write_text('<annotation></annotation>')
    voc = tmp_path / 'voc'
    voc.mkdir()
    make_voc(voc, {'a': '<annotation></annotation>', 'b': None, 'c': '<annotation></annotation>',
                   'd': '<annotation></annotation>'})
    (voc / 'JPEGImages').mkdir()
    (voc / 'JPEGImages' / 'a.jpg').symlink_to(outside / 'photo.jpg')
    (voc / 'Annotations' / 'b.xml').symlink_to(outside / 'b.xml')
    (voc / 'JPEGImages' / 'real.jpg').write_bytes(b'inside')
    (voc / 'JPEGImages' / 'c.jpg').symlink_to(voc / 'JPEGImages' / 'real.jpg')
    linked = tmp_path / 'linked_voc'
    linked.symlink_to(voc)
    for root in (voc, linked):
        result = pascalvoc.read_split(str(root), 'trainval', SHAPES)
        assert [e.filename for e in result.examples] == ['c.jpg', 'd.jpg']
        reasons = {item['item']: item['reason'] for item in result.skipped}
        assert reasons == {
            str(root / 'JPEGImages' / 'a.jpg'): 'symbolic link to %s, outside the data set '
            'folder %s: not read (copy the file into the folder to convert it)'
            % (outside / 'photo.jpg', voc),
            str(root / 'Annotations' / 'b.xml'): 'symbolic link to %s, outside the data set '
            'folder %s: not read (copy the file into the folder to convert it)'
            % (outside / 'b.xml', voc)}
