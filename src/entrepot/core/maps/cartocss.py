"""CartoCSS to Mapnik ``<Style>`` XML: the subset CARTO's examples and default styles use.

:func:`compile` parses one layer's CartoCSS and returns a :class:`Style`: the ``Map``
block's background colour and one Mapnik ``<Style>`` per attachment (``#layer::outline``),
in the order the attachments first appear. Rules cascade as carto's do: every ruleset (its
selector's filters, zoom range and attachment; nested rulesets add their parent's) is a
definition; a definition inherits the properties of every less specific one its filters do
not contradict, and the Mapnik rules come most specific first under ``filter-mode="first"``.

Every ``#id`` selects the layer (CARTO compiles each layer's CartoCSS on its own, so
``#layer`` and ``#table_name`` are the same). Zoom filters become scale denominators for
256 px web-mercator tiles: zoom ``z`` is ``ZOOM0_SCALE / 2**z``, a rule's bounds halfway (in
log scale) between zooms. Text needs a font Mapnik knows: the wheel bundles DejaVu (see
:func:`font_faces`); a ``text-face-name`` list uses its first available face, and a list with
none is refused. ``marker-type: rectangle`` draws an ellipse (Mapnik 4 only knows
``shape://ellipse`` and ``shape://arrow``). External files (``*-file``, ``url()``) are
refused: a style never reads a file or the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import mapnik

from entrepot.core import errors as E

MAX_BYTES = 64 * 1024  # a CartoCSS over this is refused
MAX_DEPTH = 16  # nested blocks deeper than this are refused
ZOOM0_SCALE = 559082264.028  # scale denominator of zoom 0 for 256 px web-mercator tiles
MAX_ZOOM = 30
DEFAULT_FACE = "DejaVu Sans Book"

DEFAULT_CARTOCSS = """#layer {
  marker-fill: #FF6600;
  marker-opacity: 1;
  marker-width: 10;
  marker-line-color: #FFF;
  marker-line-width: 1;
  marker-line-opacity: 1;
  marker-placement: point;
  marker-type: ellipse;
  marker-allow-overlap: true;
  line-color: #FF6600;
  line-width: 1;
  line-opacity: 1;
  polygon-fill: #FF6600;
  polygon-opacity: 0.7;
}
"""

COMP_OPS = frozenset(
    (
        "clear",
        "src",
        "dst",
        "src-over",
        "dst-over",
        "src-in",
        "dst-in",
        "src-out",
        "dst-out",
        "src-atop",
        "dst-atop",
        "xor",
        "plus",
        "minus",
        "multiply",
        "screen",
        "overlay",
        "darken",
        "lighten",
        "color-dodge",
        "color-burn",
        "hard-light",
        "soft-light",
        "difference",
        "exclusion",
        "contrast",
        "invert",
        "invert-rgb",
        "grain-merge",
        "grain-extract",
        "hue",
        "saturation",
        "color",
        "value",
        "linear-dodge",
        "linear-burn",
        "divide",
    )
)


@dataclass(frozen=True)
class Style:
    """A layer's compiled CartoCSS: ``Map``'s background colour and Mapnik ``<Style>`` elements."""

    background: str | None  # a Mapnik colour (``rgba(r,g,b,a)``) or None: transparent
    xml_styles: list[str]  # one ``<Style>`` element per attachment, in drawing order
    style_names: list[str]  # their names, in the same order

    @property
    def fields(self) -> frozenset[str]:
        """The feature properties the styles read (filters, ``text-name``): all a feature needs."""
        return frozenset(_FIELD.findall("".join(self.xml_styles)))


_FIELD = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")  # [name] in a Mapnik expression (not [mapnik::…])


# --- properties ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prop:
    symbolizer: str  # markers, line, polygon, text
    attr: str  # Mapnik XML attribute; "" for the text symbolizer's expression
    kind: str  # color, number, bool, keyword, expression, face, dasharray
    keywords: frozenset[str] = frozenset()


def _props() -> dict[str, _Prop]:
    p: dict[str, _Prop] = {}

    def add(name: str, sym: str, attr: str, kind: str, keywords: str = "") -> None:
        p[name] = _Prop(sym, attr, kind, frozenset(keywords.split()))

    add("marker-fill", "markers", "fill", "color")
    add("marker-fill-opacity", "markers", "fill-opacity", "number")
    add("marker-opacity", "markers", "opacity", "number")
    add("marker-width", "markers", "width", "number")
    add("marker-height", "markers", "height", "number")
    add("marker-line-color", "markers", "stroke", "color")
    add("marker-line-width", "markers", "stroke-width", "number")
    add("marker-line-opacity", "markers", "stroke-opacity", "number")
    add("marker-allow-overlap", "markers", "allow-overlap", "bool")
    add("marker-ignore-placement", "markers", "ignore-placement", "bool")
    add("marker-type", "markers", "", "keyword", "ellipse rectangle")
    add("marker-placement", "markers", "placement", "keyword", "point line interior vertex-first vertex-last")
    add("marker-comp-op", "markers", "comp-op", "keyword", " ".join(COMP_OPS))
    add("line-color", "line", "stroke", "color")
    add("line-width", "line", "stroke-width", "number")
    add("line-opacity", "line", "stroke-opacity", "number")
    add("line-dasharray", "line", "stroke-dasharray", "dasharray")
    add("line-join", "line", "stroke-linejoin", "keyword", "miter miter-revert round bevel")
    add("line-cap", "line", "stroke-linecap", "keyword", "butt round square")
    add("line-offset", "line", "offset", "number")
    add("line-comp-op", "line", "comp-op", "keyword", " ".join(COMP_OPS))
    add("polygon-fill", "polygon", "fill", "color")
    add("polygon-opacity", "polygon", "fill-opacity", "number")
    add("polygon-gamma", "polygon", "gamma", "number")
    add("polygon-comp-op", "polygon", "comp-op", "keyword", " ".join(COMP_OPS))
    add("text-name", "text", "", "expression")
    add("text-face-name", "text", "face-name", "face")
    add("text-size", "text", "size", "number")
    add("text-fill", "text", "fill", "color")
    add("text-opacity", "text", "opacity", "number")
    add("text-halo-fill", "text", "halo-fill", "color")
    add("text-halo-radius", "text", "halo-radius", "number")
    add("text-placement", "text", "placement", "keyword", "point line vertex interior")
    add("text-allow-overlap", "text", "allow-overlap", "bool")
    add("text-dx", "text", "dx", "number")
    add("text-dy", "text", "dy", "number")
    add("text-wrap-width", "text", "wrap-width", "number")
    return p


PROPERTIES: dict[str, _Prop] = _props()
_SYMBOLIZERS = {
    "polygon": "PolygonSymbolizer",
    "line": "LineSymbolizer",
    "markers": "MarkersSymbolizer",
    "text": "TextSymbolizer",
}
_MAP_IGNORED = ("buffer-size", "-torque-")  # Map properties accepted and ignored


@cache
def font_faces() -> frozenset[str]:
    """The font faces Mapnik can draw text with (the wheel registers its bundled DejaVu)."""
    return frozenset(str(n) for n in mapnik.FontEngine.face_names())


# --- errors -------------------------------------------------------------------------------


def _invalid(message: str, code: str, **details: Any) -> E.InvalidInput:
    return E.InvalidInput(message, code=f"maps.cartocss.{code}", details=details)


# --- lexing and parsing -------------------------------------------------------------------


_IDENT = re.compile(r"-?[A-Za-z_][A-Za-z0-9_-]*")
_FILTER = re.compile(
    r"""\s*(?P<key>"[^"]*"|'[^']*'|[A-Za-z_][A-Za-z0-9_:-]*)\s*(?P<op>=~|!=|>=|<=|=|>|<)\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\]]+?)\s*$"""
)


@dataclass
class _Decl:
    instance: str
    name: str
    value: str
    line: int
    index: int


@dataclass
class _Block:
    selectors: list[_Selector]
    line: int
    decls: list[_Decl] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    children: list[_Block] = field(default_factory=list)


@dataclass
class _Selector:
    text: str
    is_map: bool = False
    ids: int = 0
    attachment: str = ""
    filters: list[tuple[str, str, str]] = field(default_factory=list)  # key, op, raw value
    index: int = 0


class _Parser:
    """A recursive-descent parser of CartoCSS into blocks, declarations and variables."""

    def __init__(self, text: str) -> None:
        self.s = _strip_comments(text)
        self.i = 0
        self.counter = 0

    def line(self, pos: int | None = None) -> int:
        return self.s.count("\n", 0, self.i if pos is None else pos) + 1

    def fail(self, what: str, pos: int | None = None) -> E.InvalidInput:
        line = self.line(pos)
        return _invalid(f"CartoCSS syntax error on line {line}: {what}", "syntax", line=line)

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def parse(self) -> _Block:
        root = _Block([], 1)
        self.body(root, depth=0)
        if self.i < len(self.s):
            raise self.fail("unexpected '}'")
        return root

    def body(self, block: _Block, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _invalid(
                f"CartoCSS nests blocks deeper than {MAX_DEPTH} levels (line {self.line()}); flatten it",
                "tooDeep",
                line=self.line(),
            )
        while True:
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] == "}":
                return
            start = self.i
            if self.s[self.i] == "@":
                m = re.compile(r"@([A-Za-z_][A-Za-z0-9_-]*)\s*:").match(self.s, self.i)
                if not m:
                    raise self.fail("expected '@name: value;'")
                self.i = m.end()
                block.variables[m.group(1)] = self.value(terminators=";")
                continue
            m = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_-]*)/)?(-?[A-Za-z_][A-Za-z0-9_-]*)\s*:(?!:)").match(
                self.s, self.i
            )
            if m and depth > 0:
                self.i = m.end()
                value = self.value(terminators=";}")
                self.counter += 1
                block.decls.append(_Decl(m.group(1) or "", m.group(2), value, self.line(start), self.counter))
                continue
            brace = self.find_brace()
            selectors = [self.selector(t.strip(), start) for t in _split_top(self.s[start:brace], ",")]
            if any(not sel.text for sel in selectors):
                raise self.fail("empty selector", start)
            self.i = brace + 1
            child = _Block(selectors, self.line(start))
            self.body(child, depth + 1)
            if self.i >= len(self.s):
                raise self.fail(f"'{{' opened on line {child.line} is never closed", start)
            self.i += 1  # the closing brace
            block.children.append(child)

    def find_brace(self) -> int:
        for j, c, depth in _scan(self.s, self.i):
            if c in ";}" and not depth:
                raise self.fail(f"expected a selector and '{{' before '{c}'", j)
            if c == "{" and not depth:
                return j
        raise self.fail("expected '{' after the selector")

    def value(self, terminators: str) -> str:
        start = self.i
        self.i = len(self.s)
        for j, c, depth in _scan(self.s, start):
            if c == "{":
                raise self.fail("unexpected '{' in a value (missing ';'?)", j)
            if c in terminators and depth <= 0:
                self.i = j
                break
        else:
            if _ends_in_string(self.s, start):
                raise self.fail("unterminated string", start)
        text = self.s[start : self.i].strip()
        missing = re.search(r"\n\s*-?[A-Za-z_][A-Za-z0-9_/-]*\s*:", text)
        if missing:
            raise self.fail("missing ';' at the end of the line", start + self.s[start : self.i].find(text))
        if self.i < len(self.s) and self.s[self.i] == ";":
            self.i += 1
        elif ";" in terminators and "}" not in terminators:
            raise self.fail("expected ';' after the value", start)
        if not text:
            raise self.fail("empty value", start)
        return text

    def selector(self, text: str, pos: int) -> _Selector:
        self.counter += 1
        sel = _Selector(text, index=self.counter)
        j = 0
        while j < len(text):
            c = text[j]
            if c.isspace():
                j += 1
            elif text.startswith("::", j):
                m = _IDENT.match(text, j + 2)
                if not m:
                    raise self.fail(f"expected an attachment name after '::' in '{E.clip(text)}'", pos)
                sel.attachment = m.group(0)
                j = m.end()
            elif c == "#":
                m = _IDENT.match(text, j + 1)
                if not m:
                    raise self.fail(f"expected a layer name after '#' in '{E.clip(text)}'", pos)
                sel.ids += 1
                j = m.end()
            elif c == "[":
                end = _closing_bracket(text, j)
                if end < 0:
                    raise self.fail(f"unclosed '[' in selector '{E.clip(text)}'", pos)
                fm = _FILTER.match(text[j + 1 : end])
                if not fm:
                    raise self.fail(f"cannot read the filter '{E.clip(text[j : end + 1])}'", pos)
                sel.filters.append((_unquote(fm.group("key")), fm.group("op"), fm.group("value")))
                j = end + 1
            elif text.startswith("Map", j) and not _IDENT.match(text, j + 3):
                sel.is_map = True
                j += 3
            elif c == ".":
                raise _invalid(
                    f"CartoCSS class selectors ('{E.clip(text)}') are not supported; use #layer and filters",
                    "unsupportedSelector",
                    selector=E.clip(text),
                )
            else:
                raise self.fail(f"unexpected '{c}' in selector '{E.clip(text)}'", pos)
        return sel


def _strip_comments(text: str) -> str:
    """``text`` with ``/* */`` and ``//`` comments blanked (newlines kept for line numbers)."""
    out: list[str] = []
    i, n, quote = 0, len(text), ""
    while i < n:
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
            out.append(c)
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        elif text.startswith("//", i) and (i == 0 or text[i - 1] != ":"):
            end = text.find("\n", i)
            end = n if end < 0 else end
            i = end
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(position, character, nesting) of each character of ``text`` from ``start`` that is not in a
    string literal (quotes and the quote characters themselves are skipped; ``\\`` escapes);
    nesting counts the ``(`` and ``[`` open before it (a closing one counts as still inside)."""
    depth, quote, escaped = 0, "", False
    for j in range(start, len(text)):
        c = text[j]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            continue
        if c in "\"'":
            quote = c
            continue
        if c in "([":
            depth += 1
        yield j, c, depth
        if c in ")]":
            depth -= 1


def _ends_in_string(text: str, start: int) -> bool:
    """Whether a string literal opened in ``text`` after ``start`` is never closed."""
    quote, escaped = "", False
    for c in text[start:]:
        if escaped:
            escaped = False
        elif quote and c == "\\":
            escaped = True
        elif quote and c == quote:
            quote = ""
        elif not quote and c in "\"'":
            quote = c
    return bool(quote)


def _closing_bracket(text: str, start: int) -> int:
    """The position of the ``]`` closing the ``[`` at ``start`` (-1: none)."""
    return next((j for j, c, depth in _scan(text, start) if c == "]" and depth == 1), -1)


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split on ``sep`` outside quotes, brackets and parentheses."""
    cuts = [j for j, c, depth in _scan(text) if c == sep and depth == 0]
    return [text[a + 1 : b] for a, b in zip([-1, *cuts], [*cuts, len(text)], strict=True)]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


# --- filters ------------------------------------------------------------------------------

_Value = str | float | bool | None
_Cond = tuple[str, str, _Value]  # key, op, value


@dataclass(frozen=True)
class _Filters:
    conds: frozenset[_Cond] = frozenset()
    zoom: tuple[int, int] = (0, MAX_ZOOM)

    def count(self) -> int:
        return len(self.conds) + (self.zoom != (0, MAX_ZOOM))

    def with_(self, other: _Filters) -> _Filters | bool | None:
        """The conjunction; None if ``other`` adds nothing, False if they contradict."""
        zoom = (max(self.zoom[0], other.zoom[0]), min(self.zoom[1], other.zoom[1]))
        if zoom[0] > zoom[1]:
            return False
        new = other.conds - self.conds
        for c in new:
            if any(_contradict(c, d) for d in self.conds):
                return False
        if not new and zoom == self.zoom:
            return None
        return _Filters(self.conds | new, zoom)


def _contradict(a: _Cond, b: _Cond) -> bool:
    if a[0] != b[0]:
        return False
    if a[1] != "=" and b[1] == "=":
        a, b = b, a
    if a[1] != "=":
        return False
    v, op, w = a[2], b[1], b[2]
    if op == "=":
        return v != w
    if op == "!=":
        return v == w
    if isinstance(v, float) and isinstance(w, float):
        return not {"<": v < w, "<=": v <= w, ">": v > w, ">=": v >= w}.get(op, True)
    return False


def _mapnik_value(v: _Value) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _filter_expression(conds: frozenset[_Cond]) -> str:
    parts = []
    for key, op, value in sorted(conds, key=repr):
        if op == "=~":
            parts.append(f"([{key}].match({_mapnik_value(value)}))")
        else:
            parts.append(f"([{key}] {op} {_mapnik_value(value)})")
    return " and ".join(parts)


# --- evaluation ---------------------------------------------------------------------------


@dataclass
class _Definition:
    attachment: str
    filters: _Filters
    specificity: tuple[int, int, int]
    rules: dict[tuple[str, str], tuple[str, int, str]]  # (instance, prop) -> (value, index, where)

    def add(self, rules: dict[tuple[str, str], tuple[str, int, str]]) -> int:
        added = 0
        for key, val in rules.items():
            if key not in self.rules:
                self.rules[key] = val
                added += 1
        return added


class _Compiler:
    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.definitions: list[_Definition] = []
        self.background: str | None = None

    def resolve(self, raw: str, scopes: list[dict[str, str]], line: int) -> str:
        def sub(m: re.Match[str], depth: int) -> str:
            name = m.group(1)
            for scope in reversed(scopes):
                if name in scope:
                    if depth > 16:
                        raise _invalid(
                            f"variable @{name} refers to itself (line {line})", "variable", line=line
                        )
                    return re.sub(r"@([A-Za-z_][A-Za-z0-9_-]*)", lambda n: sub(n, depth + 1), scope[name])
            raise _invalid(f"undefined variable @{name} on line {line}; define it with '@{name}: value;'",
                           "variable", line=line, variable=name)  # fmt: skip

        return re.sub(r"@([A-Za-z_][A-Za-z0-9_-]*)", lambda m: sub(m, 0), raw)

    def walk(
        self, block: _Block, parent: _Selector | None, pfilters: _Filters, scopes: list[dict[str, str]]
    ) -> None:
        scopes = [*scopes, block.variables]
        if not block.selectors:  # the stylesheet's root
            for child in block.children:
                self.walk(child, None, pfilters, scopes)
            return
        for sel in block.selectors:
            filters = self.filters(sel, scopes, block.line)
            merged = pfilters.with_(filters)
            if merged is False:
                continue  # contradicting filters never match
            merged = pfilters if merged is None else merged
            assert isinstance(merged, _Filters)
            attachment = sel.attachment or (parent.attachment if parent else "")
            ids = sel.ids + (parent.ids if parent else 0)
            is_map = sel.is_map or bool(parent and parent.is_map)
            where = sel.text if parent is None else f"{parent.text} {sel.text}"
            eff = _Selector(where, is_map, ids, attachment, [], sel.index)
            if is_map:
                self.map_block(block, scopes)
            elif block.decls:
                rules: dict[tuple[str, str], tuple[str, int, str]] = {}
                for d in block.decls:
                    rules[(d.instance, d.name)] = (self.resolve(d.value, scopes, d.line), d.line, where)
                    self.check_property(d.name, where, d.line)
                spec = (ids, merged.count(), sel.index)
                self.definitions.append(_Definition(attachment, merged, spec, rules))
            for child in block.children:
                self.walk(child, eff, merged, scopes)

    def filters(self, sel: _Selector, scopes: list[dict[str, str]], line: int) -> _Filters:
        conds: set[_Cond] = set()
        lo, hi = 0, MAX_ZOOM
        for key, op, raw in sel.filters:
            raw = self.resolve(raw, scopes, line).strip()
            if key == "zoom":
                try:
                    z = int(float(raw))
                except ValueError:
                    raise _invalid(f"zoom filter needs a number, not '{E.clip(raw)}' (line {line})", "filter",
                                   line=line) from None  # fmt: skip
                if op in ("=", ">=", ">"):
                    lo = max(lo, z + (op == ">"))
                if op in ("=", "<=", "<"):
                    hi = min(hi, z - (op == "<"))
                if op in ("!=", "=~"):
                    raise _invalid(f"zoom filters take =, <, <=, > or >=, not {op} (line {line})", "filter",
                                   line=line)  # fmt: skip
                continue
            conds.add((key, op, _filter_value(raw, op, line)))
        return _Filters(frozenset(conds), (max(lo, 0), min(hi, MAX_ZOOM)))

    def map_block(self, block: _Block, scopes: list[dict[str, str]]) -> None:
        for d in block.decls:
            if d.name == "background-color":
                self.background = _color(self.resolve(d.value, scopes, d.line), d.name, "Map", d.line)
            elif not d.name.startswith(_MAP_IGNORED):
                raise _invalid(
                    f"unknown CartoCSS property '{d.name}' in Map (line {d.line}); supported: background-color",
                    "unknownProperty",
                    property=d.name,
                    line=d.line,
                )

    def check_property(self, name: str, where: str, line: int) -> None:
        if name.endswith("-file") or name.endswith("-image"):
            raise _invalid(
                f"CartoCSS property '{name}' in {E.clip(where)} (line {line}) is not allowed: "
                "external files or images are not allowed",
                "externalFile",
                property=name,
                line=line,
            )
        if name not in PROPERTIES:
            raise _invalid(
                f"unknown CartoCSS property '{name}' in {E.clip(where)} (line {line}); "
                "supported: marker-*, line-*, polygon-*, text-* (see the documentation for the list)",
                "unknownProperty",
                property=name,
                line=line,
                supported=sorted(PROPERTIES),
            )


def _filter_value(raw: str, op: str, line: int) -> _Value:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return _unquote(raw)
    if op == "=~":
        raise _invalid(f"a =~ filter needs a quoted pattern (line {line})", "filter", line=line)
    if raw in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[raw]
    try:
        return float(raw)
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ -]*", raw):
        return raw
    raise _invalid(
        f"cannot read the filter value '{E.clip(raw)}' (line {line}); quote strings", "filter", line=line
    )


# --- values -------------------------------------------------------------------------------


def _color(raw: str, prop: str, where: str, line: int) -> str:
    text = raw.strip()
    if "url(" in text.lower():
        raise _refuse_url(prop, where, line)
    try:
        c = mapnik.Color(text)
    except Exception:
        raise _invalid(
            f"'{E.clip(text)}' is not a colour for {prop} in {E.clip(where)} (line {line}); "
            "use #rgb, #rrggbb, rgb(), rgba() or a CSS colour name",
            "value",
            property=prop,
            line=line,
        ) from None
    return f"rgba({c.r},{c.g},{c.b},{round(c.a / 255, 4)})"


def _refuse_url(prop: str, where: str, line: int) -> E.InvalidInput:
    return _invalid(
        f"url() in {prop} in {E.clip(where)} (line {line}) is not allowed: external files or images are not allowed",
        "externalFile",
        property=prop,
        line=line,
    )


def _text_expression(raw: str, prop: str, where: str, line: int) -> str:
    """A carto text expression (``[name] + " " + [other]``) in Mapnik's expression syntax."""
    tokens = re.findall(r"""\s*(\[[^\]]+\]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\+|[^\s+]+)""", raw)
    out: list[str] = []
    expect_term = True
    for tok in tokens:
        if expect_term and tok.startswith("[") and re.fullmatch(r"\[[A-Za-z_][A-Za-z0-9_:]*\]", tok):
            out.append(tok)
        elif expect_term and tok[:1] in "\"'" and len(tok) >= 2:
            out.append(_mapnik_value(_unquote(tok)))
        elif not expect_term and tok == "+":
            out.append("+")
        else:
            raise _invalid(
                f"cannot read {prop}: {E.clip(raw)} in {E.clip(where)} (line {line}); "
                'use [field], "text" and +',
                "value",
                property=prop,
                line=line,
            )
        expect_term = not expect_term
    if expect_term:
        raise _invalid(
            f"{prop} in {E.clip(where)} (line {line}) ends with '+'", "value", property=prop, line=line
        )
    return " ".join(out)


def _value(name: str, raw: str, where: str, line: int) -> str:
    """``raw`` checked for property ``name`` and written as Mapnik wants it."""
    prop = PROPERTIES[name]
    text = raw.strip()
    if "url(" in text.lower():
        raise _refuse_url(name, where, line)

    def bad(expected: str) -> E.InvalidInput:
        return _invalid(
            f"'{E.clip(text)}' is not a valid value for {name} in {E.clip(where)} (line {line}); expected {expected}",
            "value",
            property=name,
            line=line,
        )

    if prop.kind == "color":
        return _color(text, name, where, line)
    if prop.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        return repr(number)
    if prop.kind == "bool":
        if text not in ("true", "false"):
            raise bad("true or false")
        return text
    if prop.kind == "keyword":
        if _unquote(text) not in prop.keywords:
            raise bad("one of " + ", ".join(sorted(prop.keywords)))
        return _unquote(text)
    if prop.kind == "dasharray":
        parts = [p.strip() for p in text.split(",")]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise bad("comma-separated numbers") from None
        if not numbers or any(not math.isfinite(n) or n < 0 for n in numbers):
            raise bad("comma-separated non-negative numbers")
        return ",".join(repr(n) for n in numbers)
    if prop.kind == "face":
        faces = [_unquote(p.strip()) for p in _split_top(text, ",")]
        available = font_faces()
        for face in faces:
            if face in available:
                return face
        raise _invalid(
            f"no font of text-face-name {E.clip(text)} in {E.clip(where)} (line {line}) is available; "
            + (f"available: {', '.join(sorted(available))}" if available else "this server has no fonts"),
            "font",
            property=name,
            line=line,
            available=sorted(available),
        )
    return _text_expression(text, name, where, line)


def _symbolizers(rules: dict[tuple[str, str], tuple[str, int, str]]) -> list[str]:
    """The Mapnik symbolizer elements for one rule's properties, in first-declared order."""
    groups: dict[tuple[str, str], list[tuple[int, str, str, str]]] = {}
    for (instance, name), (raw, line, where) in rules.items():
        prop = PROPERTIES[name]
        groups.setdefault((instance, prop.symbolizer), []).append((line, name, raw, where))
    order = {"polygon": 0, "line": 1, "markers": 2, "text": 3}
    out = []
    for (_instance, sym), entries in sorted(
        groups.items(), key=lambda kv: (min(e[0] for e in kv[1]), order[kv[0][1]])
    ):
        attrs: dict[str, str] = {}
        text_name: str | None = None
        for line, name, raw, where in entries:
            value = _value(name, raw, where, line)
            if name == "text-name":
                text_name = value
            elif PROPERTIES[name].attr:
                attrs[PROPERTIES[name].attr] = value
        if sym == "markers":
            attrs.setdefault("allow-overlap", "false")
        if sym == "text":
            if text_name is None:
                continue  # carto too draws no text without text-name
            if "face-name" not in attrs:
                if DEFAULT_FACE not in font_faces():
                    raise _invalid(
                        "text-* needs a font and this server has none; remove the text-* properties",
                        "font",
                    )
                attrs["face-name"] = DEFAULT_FACE
        rendered = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
        if sym == "text":
            out.append(f"<TextSymbolizer {rendered}>{escape(text_name or '')}</TextSymbolizer>")
        else:
            out.append(f"<{_SYMBOLIZERS[sym]} {rendered}/>")
    return out


def _scale(zoom: float) -> float:
    return ZOOM0_SCALE / 2**zoom


def zoom_scale_denominator(zoom: float) -> float:
    """The Mapnik scale denominator of a 256 px web-mercator tile at ``zoom``."""
    return _scale(zoom)


def _inherit(definitions: list[_Definition]) -> dict[str, list[_Definition]]:
    """carto's cascade: each definition with the properties of the less specific ones it meets."""
    ordered = sorted(definitions, key=lambda d: d.specificity, reverse=True)
    by_attachment: dict[str, list[_Definition]] = {}
    by_filter: dict[str, dict[_Filters, _Definition]] = {}
    for i, d in enumerate(ordered):
        current = [_Definition(d.attachment, d.filters, d.specificity, dict(d.rules))]
        seen = by_filter.setdefault(d.attachment, {})
        for later in ordered[i + 1 :]:
            if later.attachment != d.attachment:
                continue
            k = 0
            while k < len(current):
                merged = current[k].filters.with_(later.filters)
                if isinstance(merged, _Filters):
                    previous = seen.get(merged)
                    if previous is not None:
                        previous.add(later.rules)
                    else:
                        clone = _Definition(d.attachment, merged, d.specificity, dict(current[k].rules))
                        if clone.add(later.rules):
                            seen[merged] = clone
                            current.insert(k, clone)
                            k += 1
                elif merged is None:
                    current[k] = _Definition(
                        d.attachment, current[k].filters, d.specificity, dict(current[k].rules)
                    )
                    current[k].add(later.rules)
                k += 1
        for c in current:
            seen[c.filters] = c
            by_attachment.setdefault(d.attachment, []).append(c)
    return by_attachment


def compile(cartocss: str | None, layer: str, *, prefix: str = "") -> Style:
    """``cartocss`` (CARTO's default style when empty) compiled for ``layer``.

    Style names are ``prefix + layer`` (``+ "::" + attachment``). Raises ``InvalidInput``
    naming what to fix: a syntax error (with its line), an unknown property, a file or
    ``url()``, a bad value, an unavailable font, input over 64 KiB or nested too deep.
    """
    text = cartocss if cartocss and cartocss.strip() else DEFAULT_CARTOCSS
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise E.InvalidInput(
            f"the CartoCSS is over {MAX_BYTES // 1024} KiB; shorten it",
            code="maps.cartocss.tooLong",
            details={"limit": MAX_BYTES},
        )
    root = _Parser(text).parse()
    compiler = _Compiler(layer)
    compiler.walk(root, None, _Filters(), [])
    first_seen: dict[str, int] = {}
    for d in compiler.definitions:
        first_seen[d.attachment] = min(first_seen.get(d.attachment, d.specificity[2]), d.specificity[2])
    by_attachment = _inherit(compiler.definitions)
    xml_styles, names = [], []
    for attachment in sorted(by_attachment, key=lambda a: first_seen[a]):
        name = prefix + layer + (f"::{attachment}" if attachment else "")
        rules = []
        for d in by_attachment[attachment]:
            symbolizers = _symbolizers(d.rules)
            if not symbolizers:
                continue
            parts = []
            lo, hi = d.filters.zoom
            if lo > 0:
                parts.append(f"<MaxScaleDenominator>{_scale(lo - 0.5):.3f}</MaxScaleDenominator>")
            if hi < MAX_ZOOM:
                parts.append(f"<MinScaleDenominator>{_scale(hi + 0.5):.3f}</MinScaleDenominator>")
            if d.filters.conds:
                parts.append(f"<Filter>{escape(_filter_expression(d.filters.conds))}</Filter>")
            rules.append("<Rule>" + "".join(parts) + "".join(symbolizers) + "</Rule>")
        if rules:
            xml_styles.append(f'<Style name={quoteattr(name)} filter-mode="first">{"".join(rules)}</Style>')
            names.append(name)
    return Style(compiler.background, xml_styles, names)
