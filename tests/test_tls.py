"""``--tls self-signed``: the certificate is made once, and made again only when it lacks a name."""

from __future__ import annotations

from entrepot.tls import LOCAL_HOSTS, _names, ensure_self_signed


def test_the_certificate_is_kept_while_it_names_every_host_and_remade_when_one_is_missing(tmp_path):
    first = ensure_self_signed(tmp_path, LOCAL_HOSTS)
    assert _names(first.cert) == set(LOCAL_HOSTS)
    pem = first.cert.read_bytes()
    assert ensure_self_signed(tmp_path, LOCAL_HOSTS).cert.read_bytes() == pem  # reused
    wider = ensure_self_signed(tmp_path, (*LOCAL_HOSTS, "*.s3.localhost"))
    assert _names(wider.cert) == {*LOCAL_HOSTS, "*.s3.localhost"}
    assert wider.cert.read_bytes() != pem
    assert ensure_self_signed(tmp_path, LOCAL_HOSTS).cert.read_bytes() == wider.cert.read_bytes()
