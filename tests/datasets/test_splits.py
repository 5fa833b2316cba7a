import pytest

from datasets import specs, splits


def test_parse_spec_reads_name_fraction_pairs():
    assert splits.parse_spec('trainval:0.9,test:0.1') == [('trainval', 0.9), ('test', 0.1)]
    assert splits.parse_spec('train:0.7, val:0.2, test:0.1') == [
        ('train', 0.7), ('val', 0.2), ('test', 0.1)]


@pytest.mark.parametrize('text, message', [
    ('trainval', 'expected name:fraction pairs'),
    ('trainval:0.9,test:0.2', 'the fractions add up to 1.1, not 1'),
    ('trainval:x,test:1', 'the fraction of trainval is not a number'),
    ('trainval:0,test:1', 'the fraction of trainval must be in (0, 1]'),
    ('all:1', "'all' is not a usable split name"),
    ('a/b:1', "'a/b' is not a usable split name"),
    ('a:0.5,a:0.5', 'a split name is repeated'),
])
def test_parse_spec_refuses_bad_specs(text, message):
    with pytest.raises(ValueError) as error:
        splits.parse_spec(text)
    assert message in str(error.value)


def test_draw_cuts_every_id_once_depending_only_on_the_seed_and_the_set():
    ids = ['img%02d' % i for i in range(20)]
    parts = [('trainval', 0.9), ('test', 0.1)]
    drawn = splits.draw(ids, parts, seed=1)
    assert [len(drawn['trainval']), len(drawn['test'])] == [18, 2]
    assert sorted(drawn['trainval'] + drawn['test']) == ids
    assert splits.draw(list(reversed(ids)), parts, seed=1) == drawn
    assert splits.draw(ids, parts, seed=2) != drawn


def test_draw_refuses_a_part_without_images():
    with pytest.raises(specs.DatasetError, match='test gets none of the 3 annotated images'):
        splits.draw(['a', 'b', 'c'], [('trainval', 0.9), ('test', 0.1)], seed=0)
