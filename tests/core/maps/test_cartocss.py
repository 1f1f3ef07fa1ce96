"""CartoCSS to Mapnik styles: selectors, filters, zoom, variables, comments and refusals."""

from __future__ import annotations

import pytest

from entrepot.core import errors as E
from entrepot.core.maps import cartocss as C


def one(css: str) -> str:
    style = C.compile(css, "layer")
    assert len(style.xml_styles) == 1
    return style.xml_styles[0]


def test_default_style_when_empty() -> None:
    for css in (None, "", "  \n"):
        style = C.compile(css, "layer")
        assert style.style_names == ["layer"]
        xml = style.xml_styles[0]
        assert 'fill="rgba(255,102,0,1.0)"' in xml
        assert "<PolygonSymbolizer" in xml and "<LineSymbolizer" in xml and "<MarkersSymbolizer" in xml


def test_map_background_and_colours() -> None:
    style = C.compile(
        "Map { background-color: #fff; } #t { polygon-fill: rgb(0, 128, 0); line-color: red; }", "t"
    )
    assert style.background == "rgba(255,255,255,1.0)"
    assert 'fill="rgba(0,128,0,1.0)"' in style.xml_styles[0]
    assert 'stroke="rgba(255,0,0,1.0)"' in style.xml_styles[0]
    assert 'fill="rgba(0,0,0,0.502)"' in one("#layer { marker-fill: rgba(0,0,0,0.5); }")
    assert 'fill="rgba(17,34,51,1.0)"' in one("#layer { marker-fill: #123; }")


def test_filters_and_nesting() -> None:
    xml = one(
        "#layer { marker-width: 5; [magnitude > 3] { marker-fill: blue; [kind = 'big'] { marker-width: 9; } } }"
    )
    assert "<Filter>([kind] = 'big') and ([magnitude] &gt; 3)</Filter>" in xml
    assert xml.index("([kind] = 'big')") < xml.index("<Filter>([magnitude] &gt; 3)</Filter>")
    assert xml.count("<Rule>") == 3  # most specific first, each inheriting the less specific
    for op, text in ((">=", "&gt;="), ("<", "&lt;"), ("<=", "&lt;="), ("!=", "!=")):
        assert f"([n] {text} 2)" in one(f"#layer[n {op} 2] {{ marker-width: 1; }}")
    assert "([name] = 'it\\'s')" in one('#layer[name = "it\'s"] { marker-width: 1; }')
    assert "([mapnik::geometry_type] = 1)" in one("#layer['mapnik::geometry_type'=1] { marker-width: 1; }")


def test_contradicting_filters_are_dropped() -> None:
    xml = one("#layer[a = 1] { marker-width: 1; [a = 2] { marker-width: 2; } }")
    assert 'width="2.0"' not in xml


def test_zoom_filters_become_scale_denominators() -> None:
    xml = one("#layer { marker-width: 1; [zoom >= 5] { marker-width: 3; } }")
    lo = C.zoom_scale_denominator(4.5)
    assert f"<MaxScaleDenominator>{lo:.3f}</MaxScaleDenominator>" in xml
    assert C.zoom_scale_denominator(5) < lo < C.zoom_scale_denominator(4)
    xml = one("#layer[zoom = 10] { marker-width: 1; }")
    assert f"<MinScaleDenominator>{C.zoom_scale_denominator(10.5):.3f}</MinScaleDenominator>" in xml
    assert f"<MaxScaleDenominator>{C.zoom_scale_denominator(9.5):.3f}</MaxScaleDenominator>" in xml
    assert "Denominator" not in one(
        "#layer[zoom > 3][zoom < 2] { marker-width: 1; } #layer { line-width: 1; }"
    )


def test_variables_comments_and_selector_lists() -> None:
    css = """
    @main: #00ff00; // a comment
    /* a block
       comment */
    #a, #b[x = 1] { line-color: @main; line-width: 2 }
    """
    xml = one(css)
    assert xml.count('stroke="rgba(0,255,0,1.0)"') == 2


def test_attachments_make_styles_in_order() -> None:
    style = C.compile(
        "#layer::outline { line-color: #000; } #layer { polygon-fill: #f00; }", "t", prefix="0:"
    )
    assert style.style_names == ["0:t::outline", "0:t"]
    assert "<LineSymbolizer" in style.xml_styles[0] and "<PolygonSymbolizer" in style.xml_styles[1]


def test_text_symbolizer() -> None:
    xml = one(
        '#layer { text-name: [name] + " !"; text-size: 12; text-halo-radius: 1; text-halo-fill: #fff; }'
    )
    assert 'face-name="DejaVu Sans Book"' in xml and ">[name] + ' !'</TextSymbolizer>" in xml
    assert "DejaVu Sans Book" in C.font_faces()
    xml = one("#layer { text-name: [a]; text-face-name: 'Open Sans Regular', 'DejaVu Sans Bold'; }")
    assert 'face-name="DejaVu Sans Bold"' in xml


def refused(css: str, code: str) -> E.InvalidInput:
    with pytest.raises(E.InvalidInput) as info:
        C.compile(css, "layer")
    assert info.value.code == f"maps.cartocss.{code}", info.value.message
    return info.value


def test_refusals() -> None:
    e = refused("#layer { foo-bar: 1; }", "unknownProperty")
    assert "'foo-bar'" in e.message and "marker-*" in e.message
    for css in ("#layer { marker-file: url(a.svg); }", "#layer { polygon-pattern-file: 'x.png'; }",
                "#layer { line-pattern-file: 'x'; }", "#layer { point-file: 'x'; }",
                "#layer { shield-file: 'x'; }", "#layer { marker-fill: url(http://x/y); }"):  # fmt: skip
        assert "external files" in refused(css, "externalFile").message
    assert "line 3" in refused("#layer {\n  marker-fill: red;\n  marker-width 4;\n}", "syntax").message
    assert "line 2" in refused("#layer {\n  marker-fill: red\n  marker-width: 4;\n}", "syntax").message
    assert "line 1" in refused("#layer { marker-fill: red;", "syntax").message
    refused("#layer { marker-fill: nocolour; }", "value")
    refused("#layer { marker-width: big; }", "value")
    refused("#layer { text-name: [a]; text-face-name: 'Comic Sans'; }", "font")
    refused("#layer { marker-fill: @nope; }", "variable")
    refused("#layer { marker-width: 1; " + " " * (64 * 1024) + "}", "tooLong")
    refused("#layer { " + "[a=1] { " * 20 + "}" * 21, "tooDeep")


def test_fields_are_the_properties_the_style_reads() -> None:
    style = C.compile(
        "#layer { marker-fill: red; [magnitude > 3] { marker-width: 5; } text-name: [name] + ' km'; }"
        " #layer['mapnik::geometry_type'=2] { line-color: blue; }",
        "quakes",
    )
    assert style.fields == {"magnitude", "name"}
    assert C.compile("#layer { marker-fill: red; }", "plain").fields == frozenset()


def test_quotes_brackets_and_parentheses_are_read_as_one() -> None:
    """Separators inside strings, filters and functions do not split or end anything."""
    style = C.compile(
        "#layer[name = 'a]b, c;{'], #layer[kind = \"x\"] { marker-fill: rgba(1, 2, 3, 0.5); "
        "text-name: [name] + '; {not a block}'; }",
        "quotes",
    )
    xml = "".join(style.xml_styles)
    assert "a]b, c;{" in xml and "rgba(1,2,3,0.5" in xml.replace(" ", "")
    assert "; {not a block}" in xml
    with pytest.raises(E.InvalidInput, match="unterminated string"):
        C.compile("#layer { text-name: 'open; }", "l")
    with pytest.raises(E.InvalidInput, match=r"unexpected '\{' in a value"):
        C.compile("#layer { marker-fill: red { }", "l")
