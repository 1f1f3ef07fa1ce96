"""What an import's files are, and the DuckDB ``SELECT`` that reads each of their layers.

Nothing here loops over rows: DuckDB reads every format (``read_csv`` with its sniffer for the
delimiter, quoting and types; the spatial extension's ``ST_Read`` for GeoJSON, GeoPackage, KML,
GPX, FlatGeobuf and Shapefiles; ``read_parquet``; the excel extension's ``read_xlsx``), and one
``SELECT`` per layer adds ``the_geom`` (EPSG:4326) in CARTO's way:

1. a geometry column (``the_geom``, ``geom``, ``geometry``, ``wkb_geometry`` first), reprojected
   from its CRS when it has another one;
2. else a text column ``the_geom``, ``geom``, ``wkt`` or ``geometry`` (WKT, EWKT, hex (E)WKB or
   GeoJSON; a value that does not parse is NULL);
3. else a latitude/longitude pair (``lat``/``latitude``/``y`` and ``lon``/``lng``/``long``/
   ``longitude``/``x``; out-of-range values are NULL);
4. else no geometry (NULL, not a failure).

Python only reads a text file's bytes once to tell its encoding (UTF-8, UTF-16 by BOM, else
Latin-1 when no UTF-8 sequence is present; a mix of both is refused as broken).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine.statements import quote_ident, quote_literal

CSV = "csv"
SPATIAL = "spatial"
PARQUET = "parquet"
XLSX = "xlsx"

EXTENSIONS = {
    ".csv": CSV,
    ".tsv": CSV,
    ".txt": CSV,
    ".geojson": SPATIAL,
    ".json": SPATIAL,
    ".gpkg": SPATIAL,
    ".kml": SPATIAL,
    ".gpx": SPATIAL,
    ".fgb": SPATIAL,
    ".shp": SPATIAL,
    ".parquet": PARQUET,
    ".geoparquet": PARQUET,
    ".xlsx": XLSX,
}
ARCHIVES = (".zip", ".carto")  # a .carto file is a zip (carto_file.py)
COMPRESSED = (".gz",)
# files that come along with a layer's file in an archive (a Shapefile's parts, metadata)
SIDECARS = frozenset({".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml", ".qmd", ".md", ".pdf"})
SUPPORTED = ", ".join(sorted({*EXTENSIONS, *ARCHIVES, *(f".csv{c}" for c in COMPRESSED)}))

GEOMETRY_NAMES = ("the_geom", "geom", "geometry", "wkb_geometry")
TEXT_GEOMETRY_NAMES = ("the_geom", "geom", "wkt", "geometry")
LATITUDE_NAMES = ("latitude", "lat", "y")
LONGITUDE_NAMES = ("longitude", "lon", "lng", "long", "x")
DROPPED = ("ogc_fid", "the_geom_webmercator")
NAME_MAX = 63  # PostgreSQL's identifier length, as CARTO's table names
ENCODING_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Layer:
    """One table to create: a file (and a layer of it, for multi-layer formats) and its name."""

    path: Path
    fmt: str
    name: str  # the wanted table name (before collision suffixes)
    layer: str | None = None


def format_of(path: Path) -> str | None:
    """The reader of a file by its extension; None for a file no reader takes."""
    return EXTENSIONS.get(path.suffix.lower())


def unsupported(name: str) -> E.InvalidInput:
    return E.InvalidInput(
        f"{name!r} is not a supported file type; supported: {SUPPORTED}", code="imports.unsupportedFormat"
    )


def table_name(raw: str) -> str:
    """CARTO's table name for ``raw``: lower case, ``[a-z0-9_]``, not starting with a digit."""
    name = re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower())
    name = re.sub(r"_+", "_", name).strip("_")
    if not name:
        name = "untitled_table"
    if name[0].isdigit():
        name = f"table_{name}"
    return name[:NAME_MAX]


def unique_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, else ``wanted_1``, ``wanted_2``… (CARTO's collision rule); adds it to ``taken``."""
    name = wanted
    n = 0
    while name.lower() in taken:
        n += 1
        suffix = f"_{n}"
        name = wanted[: NAME_MAX - len(suffix)] + suffix
    taken.add(name.lower())
    return name


# -- encodings -------------------------------------------------------------------------------


def text_encoding(path: Path) -> str:
    """The encoding DuckDB should read the text file with: ``utf-8``, ``utf-16`` or ``latin-1``."""
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        valid_multibyte = False
        invalid = False
        while chunk := f.read(ENCODING_CHUNK):
            text = decoder.decode(chunk)
            if "\ufffd" in text:
                invalid = True
            # str methods, not a loop over characters: a million-row file takes milliseconds
            if not valid_multibyte and not text.isascii() and not text.replace("\ufffd", "").isascii():
                valid_multibyte = True
        if "\ufffd" in decoder.decode(b"", final=True):
            invalid = True
    if not invalid:
        return "utf-8"
    if valid_multibyte:
        raise E.InvalidInput(
            "the file mixes UTF-8 with bytes that are not UTF-8: its encoding is broken; save it as UTF-8",
            code="imports.brokenEncoding",
        )
    return "latin-1"


# -- layers ----------------------------------------------------------------------------------


def layers_of(
    cur: duckdb.DuckDBPyConnection, files: list[Path], wanted: str | None, max_layers: int
) -> list[Layer]:
    """The layers of the import's files (sidecar files skipped); ``wanted`` names a single one."""
    found: list[Layer] = []
    skipped: list[str] = []
    for path in files:
        fmt = format_of(path)
        if fmt is None:
            if path.suffix.lower() not in SIDECARS:
                skipped.append(path.name)
            continue
        if fmt == SPATIAL and path.suffix.lower() in (".gpkg", ".kml", ".gpx"):
            names = spatial_layers(cur, path)
            if len(names) > 1:
                found.extend(Layer(path, fmt, table_name(n), n) for n in names)
                continue
        found.append(Layer(path, fmt, table_name(path.stem)))
    if not found:
        if skipped:
            raise unsupported(skipped[0])
        raise E.InvalidInput("the file holds no data", code="imports.emptyFile")
    if len(found) > max_layers:
        raise E.InvalidInput(
            f"the file has {len(found)} layers; at most {max_layers} are imported (setting "
            "carto_import_max_layers)",
            code="imports.tooManyLayers",
        )
    if wanted and len(found) == 1:
        found = [Layer(found[0].path, found[0].fmt, table_name(wanted), found[0].layer)]
    return found


def spatial_layers(cur: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        rows = cur.execute("SELECT layers FROM ST_Read_Meta(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise E.InvalidInput(
            f"{path.name} cannot be read: {_first_line(exc)}", code="imports.unreadable"
        ) from None
    return [layer["name"] for row in rows for layer in (row[0] or [])]


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOptions:
    type_guessing: bool = True
    quoted_fields_guessing: bool = True
    max_columns: int = 1600


def reader(layer: Layer, options: ReadOptions) -> str:
    """The table function call that reads ``layer``."""
    path = quote_literal(str(layer.path))
    if layer.fmt == CSV:
        encoding = text_encoding(layer.path)
        return (
            f"read_csv({path}, auto_detect = true, header = true, sample_size = 20480, "
            f"all_varchar = {str(not options.type_guessing).lower()}, encoding = {quote_literal(encoding)}, "
            "normalize_names = false, null_padding = true, compression = 'none')"
        )
    if layer.fmt == SPATIAL:
        if layer.layer is not None:
            return f"ST_Read({path}, layer = {quote_literal(layer.layer)})"
        return f"ST_Read({path})"
    if layer.fmt == PARQUET:
        return f"read_parquet({path})"
    if layer.fmt == XLSX:
        return f"read_xlsx({path}, header = true, all_varchar = {str(not options.type_guessing).lower()})"
    raise unsupported(layer.path.name)


def select_of(cur: duckdb.DuckDBPyConnection, layer: Layer, options: ReadOptions) -> str:
    """``SELECT`` of the layer's columns with ``the_geom`` (EPSG:4326) derived the CARTO way."""
    source = reader(layer, options)
    try:
        described = cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise _read_error(layer, exc) from None
    columns = [(str(r[0]), str(r[1])) for r in described]
    if not columns:
        raise E.InvalidInput(f"{layer.path.name} holds no columns", code="imports.emptyFile")
    if len(columns) > options.max_columns:
        raise E.InvalidInput(
            f"{layer.path.name} has {len(columns):,} columns; at most {options.max_columns:,} are imported "
            "(setting carto_import_max_columns)",
            code="imports.tooManyColumns",
        )
    lowered = [n.lower() for n, _ in columns]
    if len(set(lowered)) != len(lowered):
        duplicated = sorted({n for n in lowered if lowered.count(n) > 1})
        raise E.InvalidInput(
            f"{layer.path.name} has several columns named {duplicated[0]!r}", code="imports.duplicatedColumn"
        )
    by_lower = {n.lower(): (n, t) for n, t in columns}
    geometry, consumed = _geometry(by_lower)
    keep = []
    for name, type_ in columns:
        low = name.lower()
        if low in consumed or low in DROPPED or (layer.fmt == SPATIAL and low == "fid"):
            continue
        if type_.upper().startswith("GEOMETRY"):
            keep.append(f"CAST({quote_ident(name)} AS GEOMETRY) AS {quote_ident(name)}")
        else:
            keep.append(quote_ident(name))
    return f"SELECT {', '.join([*keep, f'{geometry} AS the_geom'])} FROM {source}"


def _geometry(by_lower: dict[str, tuple[str, str]]) -> tuple[str, set[str]]:
    """The SQL of ``the_geom`` and the source columns it replaces."""
    geometry_columns = [low for low, (_, t) in by_lower.items() if t.upper().startswith("GEOMETRY")]
    if geometry_columns:
        preferred = [n for n in GEOMETRY_NAMES if n in geometry_columns]
        low = preferred[0] if preferred else geometry_columns[0]
        name, type_ = by_lower[low]
        return _to_4326(quote_ident(name), type_), {low}
    for low in TEXT_GEOMETRY_NAMES:
        if low in by_lower and by_lower[low][1].upper() == "VARCHAR":
            return f"CAST(TRY(pg_geometry({quote_ident(by_lower[low][0])})) AS GEOMETRY)", {low}
    lat = next((by_lower[n][0] for n in LATITUDE_NAMES if n in by_lower), None)
    lon = next((by_lower[n][0] for n in LONGITUDE_NAMES if n in by_lower), None)
    if lat is not None and lon is not None:
        y = f"TRY_CAST({quote_ident(lat)} AS DOUBLE)"
        x = f"TRY_CAST({quote_ident(lon)} AS DOUBLE)"
        return (
            f"CASE WHEN {y} BETWEEN -90 AND 90 AND {x} BETWEEN -180 AND 180 THEN ST_Point({x}, {y}) END",
            set(),
        )
    return "CAST(NULL AS GEOMETRY)", set()


def _to_4326(column: str, type_: str) -> str:
    """A geometry column in EPSG:4326: unchanged when its CRS is lon/lat (or unknown), else reprojected."""
    crs = type_[len("GEOMETRY") :].strip()
    lonlat = (
        not crs
        or "EPSG:4326" in crs
        or "OGC:CRS84" in crs
        or '"code":4326' in crs.replace(" ", "")
        or "Undefined geographic SRS" in crs
    )
    if lonlat:
        return f"CAST({column} AS GEOMETRY)"
    return f"CAST(pg_transform({column}, 4326) AS GEOMETRY)"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _read_error(layer: Layer, exc: duckdb.Error) -> E.InvalidInput:
    message = _first_line(exc)
    if "unicode" in message.lower() or "utf-8" in message.lower():
        return E.InvalidInput(f"{layer.path.name}: {message}", code="imports.brokenEncoding")
    if layer.fmt == XLSX:
        return E.InvalidInput(f"{layer.path.name} cannot be read: {message}", code="imports.badSpreadsheet")
    return E.InvalidInput(f"{layer.path.name} cannot be read: {message}", code="imports.unreadable")


def load_error(layer: Layer, exc: duckdb.Error) -> E.InvalidInput:
    """A DuckDB error while a layer is copied into its table, in the import's words."""
    return _read_error(layer, exc)
