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


def test_a_missing_split_file_names_both_ways_out(tmp_path):
    make_voc(tmp_path, {'a': '<annotation></annotation>'})
    with pytest.raises(specs.DatasetError) as error:
        pascalvoc.read_split(str(tmp_path), 'test', SHAPES)
    assert "no split file 'ImageSets/Main/test.txt'" in str(error.value)
    assert '--split_name=all' in str(error.value)
    assert '--make_splits=trainval:0.9,test:0.1' in str(error.value)


def test_a_folder_without_annotations_is_a_dataset_error_naming_both_layouts(tmp_path):
    (tmp_path / 'photo.jpg').write_bytes(b'x')
    with pytest.raises(specs.DatasetError, match='has no Annotations/ folder and no .xml files'):
        pascalvoc.read_split(str(tmp_path), 'all', SHAPES)


def _labelled(name, filename=None):
    return ('<annotation>%s<size><width>40</width><height>30</height></size>%s</annotation>'
            % ('<filename>%s</filename>' % filename if filename else '', obj(name, (1, 2, 3, 4))))


def test_a_voc_folder_without_image_sets_reads_every_annotation_as_split_all(tmp_path):
    (tmp_path / 'Annotations').mkdir()
    (tmp_path / 'JPEGImages').mkdir()
    for image_id, image in (('b', 'b.jpg'), ('a', 'a.PNG'), ('c', 'photo_c.jpeg')):
        (tmp_path / 'Annotations' / (image_id + '.xml')).write_text(
            _labelled('star', 'photo_c.jpeg' if image_id == 'c' else None))
        (tmp_path / 'JPEGImages' / image).write_bytes(b'x')
    result = pascalvoc.read_split(str(tmp_path), 'all', SHAPES)
    assert [(e.source_id, e.filename) for e in result.examples] == [
        ('a', 'a.PNG'), ('b', 'b.jpg'), ('c', 'photo_c.jpeg')]
    assert result.examples[0].image_path == str(tmp_path / 'JPEGImages' / 'a.PNG')


def test_a_flat_folder_pairs_each_xml_with_its_image(tmp_path):
    # As LabelImg writes it: IMG_1.JPG beside IMG_1.xml, <filename> naming the image.
    (tmp_path / 'IMG_1.xml').write_text(_labelled('circle', 'IMG_1.JPG'))
    (tmp_path / 'IMG_1.JPG').write_bytes(b'x')
    (tmp_path / 'shot.xml').write_text(_labelled('star', 'renamed.jpg'))
    (tmp_path / 'shot.png').write_bytes(b'x')
    (tmp_path / 'lost.xml').write_text(_labelled('star'))
    (tmp_path / 'notes.txt').write_text('not an image')
    result = pascalvoc.read_split(str(tmp_path), 'all', SHAPES)
    assert [(e.source_id, e.filename) for e in result.examples] == [
        ('IMG_1', 'IMG_1.JPG'), ('lost', 'lost.jpg'), ('shot', 'shot.png')]
    assert result.examples[0].image_path == str(tmp_path / 'IMG_1.JPG')
    assert [o.label for o in result.examples[0].objects] == [1]


def test_make_splits_writes_reproducible_split_files_and_keeps_identical_ones(tmp_path):
    for i in range(10):
        (tmp_path / ('img%d.xml' % i)).write_text(_labelled('star'))
    parts = [('trainval', 0.8), ('test', 0.2)]
    states = pascalvoc.make_splits(str(tmp_path), parts, seed=3)
    main = tmp_path / 'ImageSets' / 'Main'
    assert {name: state[1:] for name, state in states.items()} == {
        'trainval': (8, 'written'), 'test': (2, 'written')}
    trainval = (main / 'trainval.txt').read_text().split()
    test = (main / 'test.txt').read_text().split()
    assert sorted(trainval + test) == ['img%d' % i for i in range(10)]
    assert [e.source_id for e in pascalvoc.read_split(str(tmp_path), 'test', SHAPES).examples] \
        == test
    again = pascalvoc.make_splits(str(tmp_path), parts, seed=3)
    assert {name: state[2] for name, state in again.items()} == {
        'trainval': 'unchanged', 'test': 'unchanged'}
    with pytest.raises(specs.DatasetError, match='trainval.txt exists with other image ids'):
        pascalvoc.make_splits(str(tmp_path), parts, seed=4)
    assert (main / 'test.txt').read_text().split() == test


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
