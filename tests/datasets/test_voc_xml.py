import pytest

from datasets import voc_xml


def test_write_then_parse_round_trip(tmp_path):
    annotation = voc_xml.VocAnnotation('a.jpg', 40, 30, 3, [
        voc_xml.VocObject('star', 1, 2, 40, 30, 1, 0, 'Unspecified'),
        voc_xml.VocObject('cross', 5, 6, 7.5, 8, 0, 1, 'Left')])
    path = str(tmp_path / 'a.xml')
    voc_xml.write_annotation(path, annotation)
    assert voc_xml.parse_annotation(path) == annotation


def test_difficult_and_truncated_are_read_and_default_to_zero(tmp_path):
    path = tmp_path / 'a.xml'
    path.write_text(
        '<annotation><filename>a.jpg</filename>'
        '<object><name>dog</name><difficult>1</difficult><truncated>1</truncated>'
        '<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3.0</xmax><ymax>4</ymax></bndbox></object>'
        '<object><name>cat</name>'
        '<bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object>'
        '</annotation>')
    parsed = voc_xml.parse_annotation(str(path))
    assert parsed.width is None and parsed.height is None
    assert [(o.name, o.difficult, o.truncated) for o in parsed.objects] == [
        ('dog', 1, 1), ('cat', 0, 0)]
    assert parsed.objects[0][1:5] == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize('body, message', [
    ('<annotation><object>', 'malformed XML'),
    ('<foo/>', 'expected <annotation>'),
    ('<annotation><object><bndbox/></object></annotation>', 'has no <name>'),
    ('<annotation><object><name>cat</name></object></annotation>', 'has no <bndbox>'),
    ('<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>a</ymin>'
     '<xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>', '<ymin> is not a number'),
    ('<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin>'
     '<xmax>3</xmax></bndbox></object></annotation>', 'missing <ymax>'),
    ('<annotation><object><name>cat</name><bndbox><xmin>nan</xmin><ymin>2</ymin>'
     '<xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>', 'not finite'),
])
def test_malformed_annotations_name_file_and_field(tmp_path, body, message):
    path = tmp_path / 'bad.xml'
    path.write_text(body)
    with pytest.raises(voc_xml.AnnotationError, match=message) as error:
        voc_xml.parse_annotation(str(path))
    assert str(path) in str(error.value)
