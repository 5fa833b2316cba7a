"""Every relative link and #anchor of README.md and docs/*.md resolves: to a file or folder of the
repository and, for a Markdown page, to one of its headings (GitHub's anchors) or an explicit
<a id=...>."""
import glob
import os
import re
import unicodedata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md'] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+"[^"]*")?\)')
EXPLICIT = re.compile(r'<a\s+(?:id|name)="([^"]+)"')


def _read(page):
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def _prose(text):
    """The text without fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r'^ *```.*?^ *```', '', text, flags=re.S | re.M)
    return re.sub(r'`[^`\n]*`', '', text)


def slug(heading):
    """GitHub's anchor of a heading: its text (no markup) lowercased, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links -> their text
    text = re.sub(r'<[^>]+>', '', text).replace('`', '').replace('*', '')
    text = text.strip().lower()
    kept = ''.join(c for c in text if c in ' -_' or unicodedata.category(c)[0] in 'LN')
    return kept.replace(' ', '-')


def anchors(page):
    """Every anchor of a Markdown page: its headings (duplicates numbered) and <a id=...>."""
    text = _read(page)
    found, seen = set(EXPLICIT.findall(text)), {}
    without_code = re.sub(r'^ *```.*?^ *```', '', text, flags=re.S | re.M)
    for heading in re.findall(r'^#{1,6} +(.+?) *#*$', without_code, re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if not count else '%s-%d' % (base, count))
    return found


def links(page):
    return [target for target in LINK.findall(_prose(_read(page)))
            if not re.match(r'[a-z][a-z0-9+.-]*:', target)]


def test_the_slug_is_githubs():
    assert slug('What `make demo` does') == 'what-make-demo-does'
    assert slug('SSD300 and SSD512, VOC07+12 trainval -> VOC07 test') == (
        'ssd300-and-ssd512-voc0712-trainval---voc07-test')
    assert slug('Export: a float32 graph plus the session config') == (
        'export-a-float32-graph-plus-the-session-config')


def test_the_pages_have_links():
    assert len(PAGES) > 5
    assert len(links('README.md')) > 20


@pytest.mark.parametrize('page', PAGES)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition('#')
        resolved = (os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path
                    else os.path.join(ROOT, page))
        if not os.path.exists(resolved):
            broken.append('%s: no file %s' % (target, os.path.relpath(resolved, ROOT)))
        elif anchor and resolved.endswith('.md'):
            if anchor not in anchors(os.path.relpath(resolved, ROOT)):
                broken.append('%s: no anchor #%s in %s' % (target, anchor,
                                                            os.path.relpath(resolved, ROOT)))
    assert not broken, '\n'.join(broken)
