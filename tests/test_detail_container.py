"""content_container finds the content container from libxml2's list of id and class attributes when the page names
no TRS_Editor (its Python walk of every element was a fifth of reading such a page), and by its walk otherwise: both
give the element every element's tag, id and classes select (test_detail's reference), and the elements walked."""

from __future__ import annotations

from lxml import etree
from test_detail import BUILT, EMPTY_CELLS, hostile_pages, real_pages, reference_content_container

from gongkai.crawler.detail import _parse, content_container

# ids and classes around the selectors: tokens among others, whitespace of every kind, case, repeats, nesting, a
# selector's name as text or in another attribute, elements inside a template
SELECTOR_PAGES = [
    "<html><body><div class='a\u3000article'>x</div><p id='Zoom'>y</p><div id='zoom' class='content'>z</div></body></html>",
    "<html><body><div class='TRS_EDITOR'>no</div><span class='xcontent contentx'>no</span><i title='content'>t</i>"
    "<b data-id='zoom'>d</b><p id=' zoom'>s</p></body></html>",
    "<html><body><template><div class='bt_content'>t</div></template><div class='\tarticle_content\n'>a</div>"
    "<ucapcontent>u</ucapcontent><article>r</article></body></html>",
    "<html><body>" + "".join(f"<div class='c{i}' id='i{i}'><span class='article-content'>{i}</span></div>"
                             for i in range(300)) + "<div id='content'>last</div></body></html>",
    "<html><body><div class='trs_editor_view'>1</div><div class='TRS_Editor'>2</div></body></html>",
    "<html><body><p>no attributes at all</p><table><tr><td>1</td></tr></table></body></html>",
    # TRS_Editor named in the text, in another attribute and in a longer class before the element of that class
    "<html><body><div id='zoom'>z</div><div class='xTRS_Editor TRS_Editor_2'>a</div><p title='TRS_Editor'>TRS_Editor</p>"
    "<div class='a\tTRS_Editor'>b</div><div class='TRS_Editor'>c</div></body></html>",
    "<html><body><p>TRS_Editor</p><div class='TRS_Editors'>no</div><article>r</article></body></html>",
]


def test_both_ways_select_what_every_element_selects() -> None:
    pages = real_pages() + EMPTY_CELLS + hostile_pages() + BUILT + SELECTOR_PAGES
    selected = 0
    for text in pages:
        root = _parse(text)
        assert root is not None
        expected = reference_content_container(root)
        by_walk: list[etree._Element] = []
        by_attributes: list[etree._Element] = []
        assert content_container(root, by_walk) is expected
        assert content_container(root, by_attributes, source="") is expected  # (no TRS_Editor named: the attributes)
        assert content_container(root, source=text) is expected  # (as parse_detail calls it)
        if expected is None:
            assert by_walk == by_attributes == list(root.iter(etree.Element))
        else:
            selected += 1
    assert selected >= 10  # (not only pages without a container)
