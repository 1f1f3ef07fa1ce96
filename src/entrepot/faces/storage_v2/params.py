"""Keboola parameters: one map from the query string and the body, whatever its encoding.

Callers send the same parameter as a query string (the seeds), a form body (kbcstorage),
a JSON object (PHP client) or multipart fields (curl examples). On a clash the body wins.
Arrays arrive as ``k[]=a``, ``k[0]=a``, repeated ``k=a&k=b`` or JSON arrays; nested bracket
keys (``whereFilters[0][column]=x``) become lists of objects.
"""

from __future__ import annotations

import builtins
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from entrepot.core.errors import InvalidInput
from entrepot.faces.http import decode_json, read_body, services_of

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_INT_MAX = 2**63 - 1  # the catalog's integer range; larger numbers name nothing
_MAX_DEPTH = 8  # bracket levels of a form key (whereFilters[0][values][0] has 3)


class Params:
    """Merged request parameters with typed accessors that raise ``InvalidInput``."""

    def __init__(self, values: dict[str, Any], raw_body: bytes = b"", content_type: str = ""):
        self.values = values
        self.raw_body = raw_body
        self.content_type = content_type

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        """The raw value: a string, a list or an object."""
        return self.values.get(name, default)

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is None or value == "":
            return default
        if isinstance(value, (dict, list)):
            raise InvalidInput(f"parameter {name} must be a string")
        return _no_nul(name, str(value))

    def bool(self, name: builtins.str, default: bool = False) -> bool:
        value = self.values.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidInput(f"parameter {name} must be a boolean (1/0 or true/false), not {value!r}")

    def int(
        self, name: builtins.str, default: int | None = None, *, minimum: int | None = None
    ) -> int | None:
        value = self.str(name)
        if value is None:
            return default
        try:
            number = int(str(value).strip())
        except ValueError as exc:
            raise InvalidInput(f"parameter {name} must be an integer, not {value!r}") from exc
        if minimum is not None and number < minimum:
            raise InvalidInput(f"parameter {name} must be at least {minimum}")
        if abs(number) > _INT_MAX:
            raise InvalidInput(f"parameter {name} is too large: at most {_INT_MAX}")
        return number

    def list(self, name: builtins.str) -> list[builtins.str]:
        """An array parameter; a single string is split on commas."""
        value = self.values.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, dict):
            value = [value[k] for k in sorted(value, key=_index_key)]
        if isinstance(value, list):
            if any(isinstance(v, (dict, list)) for v in value):
                raise InvalidInput(f"parameter {name} must be a list of strings, not of objects or lists")
            if len(value) == 1 and isinstance(value[0], str) and "," in value[0]:
                value = value[0].split(",")
            return [_no_nul(name, str(v).strip()) for v in value if str(v).strip() != ""]
        return [_no_nul(name, part.strip()) for part in str(value).split(",") if part.strip()]

    def map(self, name: builtins.str) -> dict[builtins.str, Any]:
        """An object parameter (``name[key]=value`` or a JSON object)."""
        value = self.values.get(name)
        if value is None or value == "" or value == []:
            return {}
        if not isinstance(value, dict):
            raise InvalidInput(f"parameter {name} must be an object (name[key]=value)")
        return value


def _no_nul(name: str, text: str) -> str:
    if "\x00" in text:
        raise InvalidInput(f"parameter {name} must not contain NUL characters")
    return text


def _index_key(k: str) -> tuple[int, str]:
    return (int(k), "") if k.isdigit() else (1 << 62, k)


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all indexes into lists, recursively."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Parse ``k=v`` pairs with PHP-style bracket keys into nested values."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY_RE.match(key)
        if not m:
            out[key] = value
            continue
        name, brackets = m.group(1), m.group(2)
        parts = re.findall(r"\[([^\[\]]*)\]", brackets)
        if len(parts) > _MAX_DEPTH:
            raise InvalidInput(f"parameter {name} nests more than {_MAX_DEPTH} bracket levels")
        if not parts:
            if name in out:  # repeated k=a&k=b
                prev = out[name]
                out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                out[name] = value
            continue
        node: Any = out
        path = [name, *parts]
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(node, list):
                node.append({} if nxt != "" else [])
                node = node[-1]
                continue
            if part not in node or not isinstance(node[part], (dict, list)):
                node[part] = [] if nxt == "" else {}
            node = node[part]
        last = path[-1]
        if isinstance(node, list):
            node.append(value)
        elif last == "":
            node.setdefault(last, []).append(value)
        else:
            node[last] = value
    return _listify(out)


async def keboola_params(request: Request) -> Params:
    """FastAPI dependency: the merged parameter map of a Keboola call."""
    query = parse_pairs(parse_qsl(request.url.query, keep_blank_values=True))
    body: dict[str, Any] = {}
    raw = b""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        limit = services_of(request).settings.max_request_body
        if content_type == "multipart/form-data":
            form = await request.form(max_part_size=limit)
            body = parse_pairs([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
            files = {k: v for k, v in form.multi_items() if not isinstance(v, str)}
            request.state.upload_files = files
        else:
            raw = await read_body(request, limit)
            if raw.strip():
                if content_type == "application/json" or (
                    not content_type and raw.lstrip()[:1] in (b"{", b"[")
                ):
                    try:
                        decoded = decode_json(raw)
                    except ValueError as exc:
                        raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc
                    if not isinstance(decoded, dict):
                        raise InvalidInput("the JSON request body must be an object")
                    body = decoded
                elif content_type == "application/x-www-form-urlencoded":
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise InvalidInput("the form body is not valid UTF-8") from exc
                    body = parse_pairs(parse_qsl(text, keep_blank_values=True))
    merged = {**query, **body}
    return Params(merged, raw_body=raw, content_type=content_type)
