"""A guarded downloader for URLs that users hand to entrepot (Keboola ``dataUrl``, CARTO Import API).

A user-supplied URL is a server-side request forgery risk: without care it reaches the
cloud metadata service (169.254.169.254), the catalog database or any other service on the
private network. :func:`check_url` therefore accepts only ``http``/``https`` URLs without
user info, resolves the host with :func:`socket.getaddrinfo` and refuses the URL when *any*
resolved address is private, loopback, link-local, multicast, reserved, unspecified, shared
(CGNAT 100.64.0.0/10), IPv6 unique-local or site-local, or any other non-global address —
also when such an address hides inside an IPv4-mapped, 6to4 or Teredo IPv6 address. The
operator lets chosen private targets through with ``ENTREPOT_URL_IMPORT_ALLOWED_HOSTS``:
an entry is an exact host name, an IP address or a CIDR range.

:func:`download` streams the body with httpx into a temporary file next to the destination
and renames it at the end; any failure removes the partial file.

Design choices
--------------
* **Redirects** are followed by hand (``follow_redirects=False``, at most
  :data:`MAX_REDIRECTS`); every hop is checked again, before anything connects to it.
* **DNS rebinding**: a host name is resolved exactly once per hop, the addresses are
  checked, and the request is sent *to the checked IP address* (the URL's host is replaced
  by the IP). The original host travels in the ``Host`` header and, for HTTPS, in httpx's
  documented ``sni_hostname`` request extension, which httpcore passes to
  ``ssl.SSLContext.wrap_socket(server_hostname=...)``. So SNI is sent and the certificate is
  verified against the host name the user gave, with the default verification intact. This
  uses public httpx API only (no private transport internals) and no second DNS lookup can
  happen between the check and the connection. When a name resolves to several allowed
  addresses they are tried in order until one connects.
* **Proxies** from the environment are ignored (``trust_env=False``): a proxy would do its
  own resolution and defeat the pinning.
* **Time limit**: ``timeout`` is a total deadline for the whole download (all hops,
  connecting, headers and body). Every network operation gets at most the remaining time,
  and a watchdog thread shuts the socket down at the deadline, so a server that sends a
  trickle or stalls mid-body cannot hold the download past it. The same watchdog makes a
  set ``cancelled`` event stop a blocked read promptly (:class:`JobCancelled`).
* **Bytes are stored as sent**: the request asks for ``Accept-Encoding: identity`` and the
  body is not decoded, so the size limit counts what lands on disk and a compressed
  "bomb" cannot expand in memory. A server that compresses anyway is reported in
  :attr:`DownloadResult.content_encoding`.
* Error messages show the URL without its query string (pre-signed URLs carry secrets
  there).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from entrepot.core.errors import InvalidInput, JobCancelled, PayloadTooLarge

__all__ = ["MAX_REDIRECTS", "DownloadResult", "check_url", "download"]

MiB = 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SETTING = "ENTREPOT_URL_IMPORT_ALLOWED_HOSTS"
_MAX_BYTES_SETTING = "ENTREPOT_URL_IMPORT_MAX_BYTES"
_TIMEOUT_SETTING = "ENTREPOT_URL_IMPORT_TIMEOUT"
_CONDITIONAL = frozenset({"if-none-match", "if-modified-since"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = ipaddress.ip_address("169.254.169.254")
_WATCHDOG_POLL = 0.05

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` stored."""

    path: Path
    """The destination file (complete; renamed into place)."""
    size: int
    """Bytes written."""
    content_type: str | None
    """The ``Content-Type`` of the final response, if it sent one."""
    final_url: str
    """The URL the body came from, after redirects."""
    content_encoding: str | None = None
    """The ``Content-Encoding`` of the final response (bytes are stored undecoded)."""
    etag: str | None = None
    """The ``ETag`` of the final response, if it sent one."""
    last_modified: str | None = None
    """The ``Last-Modified`` of the final response, if it sent one."""
    sha256: str | None = None
    """The SHA-256 (hex) of the bytes written, computed while streaming; None when not modified."""
    not_modified: bool = False
    """The source answered 304 to the conditional ``headers``: nothing was written, ``dest`` is absent."""


# --- checking ------------------------------------------------------------------------------


class _AllowList:
    """The parsed ``allowed`` entries: exact host names, IP addresses and CIDR ranges."""

    def __init__(self, entries: Sequence[str]):
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            candidate = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
            try:
                self.networks.append(ipaddress.ip_network(candidate, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry:
                raise InvalidInput(
                    f"{_ALLOWED_SETTING} entry {raw!r} is neither a host name, an IP address nor a CIDR "
                    "range; use e.g. 'files.internal', '10.0.0.5' or '10.0.0.0/8' (no ports, no schemes)"
                )
            self.hosts.add(_normalize_host(entry))

    def allows_host(self, host: str) -> bool:
        return _normalize_host(host) in self.hosts

    def allows_ip(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c in net for c in candidates for net in self.networks if c.version == net.version)


def _normalize_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _classify(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached (``None`` when it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[IPAddress] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        for inner in embedded:
            kind = _classify(inner)
            if kind is not None:
                return kind
        if ip.ipv4_mapped is not None:
            return None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip == _METADATA:
        return "link-local (cloud metadata)"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared (CGNAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def _display(url: httpx.URL | str) -> str:
    """The URL for messages: without query and fragment, which may carry signatures."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        shown = str(parsed.copy_with(query=None, fragment=None))
        return shown + ("?…" if parsed.query else "")
    except Exception:
        text = str(url)
        return text.split("?", 1)[0][:200]


@dataclass(frozen=True)
class _Target:
    """One checked hop: the URL, its host as sent on the wire, and the addresses to connect to."""

    url: httpx.URL
    host: str
    addresses: tuple[str, ...]
    host_is_ip: bool


def _check(url: str, allow: _AllowList, label: str, via: str | None = None) -> _Target:
    def refuse(reason: str) -> InvalidInput:
        where = (
            f"{label} {_display(via)} redirects to {_display(url)}, which"
            if via
            else f"{label} {_display(url)}"
        )
        return InvalidInput(f"{where} {reason}", details={"url": _display(url)})

    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"{label} is empty; give an http:// or https:// URL")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise refuse("contains spaces, control characters or backslashes; percent-encode them (e.g. %20)")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise refuse(f"is not a valid URL ({exc}); give an http:// or https:// URL") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "no scheme"
        raise refuse(f"uses {scheme}; only http:// and https:// URLs can be imported")
    if parsed.userinfo:
        raise refuse(
            "contains a user name or password before '@'; entrepot does not send credentials in URLs — "
            "use a pre-signed URL or a public one"
        )
    try:
        host = parsed.raw_host.decode("ascii")
    except UnicodeDecodeError:
        raise refuse("has a host name that is not valid") from None
    if not host:
        raise refuse("has no host name")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise refuse(
            f"has a host name that cannot be resolved ({host}: {reason}); check the host name"
        ) from None

    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise refuse(f"has a host name that resolves to no address ({host})")

    if not allow.allows_host(host):
        for address in addresses:
            ip = ipaddress.ip_address(address)
            kind = _classify(ip)
            if kind is not None and not allow.allows_ip(ip):
                article = "an" if kind[0] in "aeiou" else "a"
                raise refuse(
                    f"points to {article} {kind} address ({address}); entrepot refuses private, loopback "
                    f"and link-local addresses unless they are listed in {_ALLOWED_SETTING}"
                )
    return _Target(url=parsed, host=host, addresses=tuple(addresses), host_is_ip=literal is not None)


def check_url(url: str, *, allowed: Sequence[str], label: str = "dataUrl") -> None:
    """Refuse ``url`` (:class:`InvalidInput`) unless it is an http(s) URL to public addresses.

    ``allowed`` lists host names, IP addresses and CIDR ranges that may be reached although
    they are private (``ENTREPOT_URL_IMPORT_ALLOWED_HOSTS``). ``label`` names the URL in
    messages (``dataUrl``, ``url``).
    """
    _check(url, _AllowList(allowed), label)


# --- downloading ---------------------------------------------------------------------------


class _Watchdog:
    """Shuts the current socket down when the deadline passes or the job is cancelled."""

    def __init__(self, deadline: float, cancelled: threading.Event | None):
        self._deadline = deadline
        self._cancelled = cancelled
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.reason: str | None = None
        self._thread = threading.Thread(target=self._run, name="urlguard-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._fire("timeout")
                return
            if self._stop.wait(min(remaining, _WATCHDOG_POLL)):
                return
            if self._cancelled is not None and self._cancelled.is_set():
                self._fire("cancelled")
                return

    def _fire(self, reason: str) -> None:
        with self._lock:
            self.reason = reason
            self._shutdown()

    def attach(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        sock = None
        if stream is not None:
            with contextlib.suppress(Exception):
                sock = stream.get_extra_info("socket")
        with self._lock:
            self._sock = sock if isinstance(sock, socket.socket) else None
            if self.reason is not None:
                self._shutdown()

    def detach(self) -> None:
        with self._lock:
            self._sock = None

    def _shutdown(self) -> None:
        if self._sock is not None:
            # socket.socket.shutdown on the file descriptor, bypassing SSLSocket's own shutdown,
            # wakes a thread blocked in recv() without touching TLS state from this thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)


class _Download:
    def __init__(
        self,
        *,
        allow: _AllowList,
        label: str,
        max_bytes: int,
        timeout: float,
        chunk_size: int,
        on_progress: Callable[[int, int | None], None] | None,
        cancelled: threading.Event | None,
    ):
        self.allow = allow
        self.label = label
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.chunk_size = max(1, chunk_size)
        self.on_progress = on_progress
        self.cancelled = cancelled
        self.deadline = time.monotonic() + timeout
        self.headers: dict[str, str] = {}
        self.digest = hashlib.sha256()

    # errors -----------------------------------------------------------------------------
    def timed_out(self, url: httpx.URL) -> InvalidInput:
        return InvalidInput(
            f"{self.label} {_display(url)} did not finish downloading within {self.timeout:g} seconds "
            f"({_TIMEOUT_SETTING}); raise the limit or use a faster source",
            details={"url": _display(url), "timeout": self.timeout},
        )

    def too_large(self, url: httpx.URL, size: int | None = None) -> PayloadTooLarge:
        got = f" ({size} bytes)" if size is not None else ""
        return PayloadTooLarge(
            f"{self.label} {_display(url)} is larger{got} than the import limit of {self.max_bytes} bytes "
            f"({_MAX_BYTES_SETTING}); raise the limit or split the file",
            details={"url": _display(url), "limit": self.max_bytes},
        )

    def failed(self, url: httpx.URL, exc: BaseException) -> InvalidInput:
        reason = str(exc).strip() or type(exc).__name__
        return InvalidInput(
            f"{self.label} {_display(url)} could not be downloaded: {reason}",
            details={"url": _display(url)},
        )

    def check_stop(self, url: httpx.URL, watchdog: _Watchdog | None = None) -> None:
        if (self.cancelled is not None and self.cancelled.is_set()) or (
            watchdog is not None and watchdog.reason == "cancelled"
        ):
            raise JobCancelled(f"the download of {self.label} {_display(url)} was cancelled")
        if time.monotonic() >= self.deadline or (watchdog is not None and watchdog.reason == "timeout"):
            raise self.timed_out(url)

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    # requests ---------------------------------------------------------------------------
    def open(self, client: httpx.Client, target: _Target, watchdog: _Watchdog) -> httpx.Response:
        """Send GET to the first checked address that accepts a connection."""
        headers = {
            "Host": target.url.netloc.decode("ascii"),
            "Accept-Encoding": "identity",
            "User-Agent": "entrepot-url-import",
            **self.headers,
        }
        extensions: dict[str, object] = {}
        if target.url.scheme == "https" and not target.host_is_ip:
            extensions["sni_hostname"] = target.host
        last_error: BaseException | None = None
        for address in target.addresses:
            self.check_stop(target.url, watchdog)
            extensions["timeout"] = httpx.Timeout(self.remaining()).as_dict()
            request = httpx.Request(
                "GET", target.url.copy_with(host=address), headers=headers, extensions=dict(extensions)
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            except httpx.TimeoutException:
                self.check_stop(target.url, watchdog)
                raise self.timed_out(target.url) from None
            except httpx.HTTPError as exc:
                self.check_stop(target.url, watchdog)
                raise self.failed(target.url, exc) from None
            watchdog.attach(response)
            return response
        self.check_stop(target.url, watchdog)
        raise self.failed(target.url, last_error or OSError("no address accepted the connection"))

    def stream_to(self, response: httpx.Response, url: httpx.URL, out: BinaryIO, watchdog: _Watchdog) -> int:
        total: int | None = None
        length = response.headers.get("content-length")
        if length is not None and length.strip().isdigit():
            total = int(length)
            if total > self.max_bytes:
                raise self.too_large(url, total)
        size = 0
        buffer = bytearray()
        try:
            for piece in response.iter_raw():
                size += len(piece)
                if size > self.max_bytes:
                    raise self.too_large(url)
                buffer += piece
                self.digest.update(piece)
                if len(buffer) >= self.chunk_size:
                    out.write(buffer)
                    buffer.clear()
                    if self.on_progress is not None:
                        self.on_progress(size, total)
                self.check_stop(url, watchdog)
        except httpx.TimeoutException:
            self.check_stop(url, watchdog)
            raise self.timed_out(url) from None
        except (httpx.HTTPError, OSError, ValueError) as exc:
            self.check_stop(url, watchdog)
            raise self.failed(url, exc) from None
        if buffer:
            out.write(buffer)
        self.check_stop(url, watchdog)
        if self.on_progress is not None:
            self.on_progress(size, total)
        return size


def download(
    url: str,
    dest: Path,
    *,
    allowed: Sequence[str],
    max_bytes: int,
    timeout: float,
    chunk_size: int = MiB,
    on_progress: Callable[[int, int | None], None] | None = None,
    cancelled: threading.Event | None = None,
    label: str = "dataUrl",
    ssl_context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> DownloadResult:
    """Download ``url`` into ``dest`` after :func:`check_url` accepted it (and every redirect hop).

    ``max_bytes`` and ``timeout`` (seconds, total) bound the download; ``on_progress(done,
    total_or_None)`` is called after each written chunk; a set ``cancelled`` event stops it
    with :class:`JobCancelled`. ``ssl_context`` replaces the default certificate
    verification (e.g. to trust a private CA); verification is never switched off.
    ``headers`` are conditional request headers (``If-None-Match``, ``If-Modified-Since``): a
    304 answer to them returns a result with ``not_modified`` set and writes nothing.
    Raises :class:`InvalidInput` (refused URL, HTTP error status, connection failure,
    timeout) or :class:`PayloadTooLarge`; ``dest`` is only created on success.
    """
    dest = Path(dest)
    job = _Download(
        allow=_AllowList(allowed),
        label=label,
        max_bytes=max_bytes,
        timeout=timeout,
        chunk_size=chunk_size,
        on_progress=on_progress,
        cancelled=cancelled,
    )
    conditional = {k: v for k, v in (headers or {}).items() if k.lower() in _CONDITIONAL and v}
    job.headers = conditional
    target = _check(url, job.allow, label)
    job.check_stop(target.url)

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            httpx.Client(
                trust_env=False,
                follow_redirects=False,
                verify=ssl_context if ssl_context is not None else True,
            ) as client,
            _Watchdog(job.deadline, cancelled) as watchdog,
        ):
            hops = 0
            while True:
                response = job.open(client, target, watchdog)
                try:
                    status = response.status_code
                    location = response.headers.get("location")
                    if status in _REDIRECT_STATUSES and location:
                        if hops >= MAX_REDIRECTS:
                            raise InvalidInput(
                                f"{label} {_display(url)} redirects more than {MAX_REDIRECTS} times; "
                                "give the final URL of the file",
                                details={"url": _display(url)},
                            )
                        try:
                            next_url = str(target.url.join(location))
                        except (httpx.InvalidURL, ValueError, TypeError):
                            next_url = location
                        hops += 1
                        target = _check(next_url, job.allow, label, via=str(target.url))
                        continue
                    if status == 304 and conditional:
                        result = DownloadResult(
                            path=dest,
                            size=0,
                            content_type=response.headers.get("content-type"),
                            final_url=str(target.url),
                            etag=response.headers.get("etag"),
                            last_modified=response.headers.get("last-modified"),
                            not_modified=True,
                        )
                        break
                    if not 200 <= status < 300:
                        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                        raise InvalidInput(
                            f"{label} {_display(target.url)} answered HTTP {status}{phrase}; "
                            "check that the URL is correct and has not expired",
                            details={"url": _display(target.url), "status": status},
                        )
                    size = job.stream_to(response, target.url, out, watchdog)
                    result = DownloadResult(
                        path=dest,
                        size=size,
                        content_type=response.headers.get("content-type"),
                        final_url=str(target.url),
                        content_encoding=response.headers.get("content-encoding"),
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                        sha256=job.digest.hexdigest(),
                    )
                    break
                finally:
                    watchdog.detach()
                    with contextlib.suppress(Exception):
                        response.close()
        if result.not_modified:
            tmp.unlink()
        else:
            os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return result
