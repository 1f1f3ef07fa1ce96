"""Settings: every one documented, sources in the documented priority, secrets masked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from entrepot.config import Settings, load_settings, mask_url_password
from support.server import cli_env, run_cli

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_setting_is_documented_in_configuration_md():
    text = DOCS.read_text()
    missing = [name for name in Settings.model_fields if f"ENTREPOT_{name.upper()}" not in text]
    assert missing == [], f"document these settings in docs/configuration.md: {missing}"


def test_documentation_names_no_setting_that_does_not_exist():
    text = DOCS.read_text()
    documented = set(re.findall(r"ENTREPOT_([A-Z0-9_]+)", text)) - {"CONFIG", "URL", "TOKEN"}
    unknown = {name for name in documented if name.lower() not in Settings.model_fields}
    assert unknown == set()


def test_defaults_are_the_embedded_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == tmp_path / "entrepot-data"
    assert settings.effective_public_url == "http://127.0.0.1:8000"
    assert settings.effective_catalog_url == f"sqlite:///{tmp_path / 'entrepot-data' / 'catalog.sqlite'}"
    assert settings.effective_blob_url == (tmp_path / "entrepot-data" / "blobs").as_uri()
    assert settings.workers == 2


def test_flags_beat_environment_beat_toml_file(tmp_path, monkeypatch):
    toml = tmp_path / "entrepot.toml"
    toml.write_text('port = 7000\nhost = "0.0.0.0"\nworkers = 5\nmax_request_body = 10000\n')
    monkeypatch.setenv("ENTREPOT_PORT", "7100")
    monkeypatch.setenv("ENTREPOT_WORKERS", "3")
    settings = load_settings(toml, workers=1)
    assert settings.workers == 1  # flag
    assert settings.port == 7100  # environment over file
    assert settings.host == "0.0.0.0"  # file over default
    assert settings.max_request_body == 10000
    assert settings.effective_public_url == "http://127.0.0.1:7100"


def test_config_file_can_come_from_the_environment(tmp_path, monkeypatch):
    toml = tmp_path / "c.toml"
    toml.write_text("port = 7345\n")
    monkeypatch.setenv("ENTREPOT_CONFIG", str(toml))
    assert load_settings().port == 7345


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_and_invalid_settings_are_rejected(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(toml)
    with pytest.raises(ValidationError, match="workers"):
        Settings(data_dir=tmp_path, workers=-1)
    with pytest.raises(ValidationError, match="file://"):
        Settings(data_dir=tmp_path, blob_url="ftp://x/y")


def test_public_url_is_used_verbatim_without_trailing_slash(tmp_path):
    settings = Settings(data_dir=tmp_path, public_url="https://data.example.com/")
    assert settings.effective_public_url == "https://data.example.com"


def test_tls_switches_handed_out_urls_to_https(tmp_path):
    assert Settings(data_dir=tmp_path, tls="self-signed").effective_public_url.startswith("https://")


def test_masking_hides_passwords_and_secrets(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        catalog_url="postgresql+psycopg://app:hunter2@db:5432/entrepot",
        secret_key="s3cret",
    )
    masked = settings.masked()
    assert "hunter2" not in json.dumps(masked, default=str)
    assert "s3cret" not in json.dumps(masked, default=str)
    assert masked["catalog_url"] == "postgresql+psycopg://app:********@db:5432/entrepot"
    assert mask_url_password("sqlite:///x.db") == "sqlite:///x.db"


def test_entrepot_config_prints_effective_settings_masked(tmp_path):
    env = cli_env(
        tmp_path / "data", ENTREPOT_CATALOG_URL="postgresql+psycopg://u:pw@h/db", ENTREPOT_PORT="8123"
    )
    proc = run_cli("config", "--json", env=env)
    values = json.loads(proc.stdout)
    assert values["port"] == 8123
    assert values["data_dir"] == str((tmp_path / "data").resolve())
    assert "pw" not in values["catalog_url"]
    assert set(Settings.model_fields) <= set(values)


def test_invalid_setting_makes_the_cli_exit_2_with_a_message(tmp_path):
    env = cli_env(tmp_path / "data", ENTREPOT_PORT="not-a-port")
    proc = run_cli("config", env=env, check=False)
    assert proc.returncode == 2
    assert "port" in (proc.stderr + proc.stdout).lower()
    assert "Traceback" not in proc.stderr


def test_failpoints_are_checked_when_settings_load():
    from entrepot.core.failpoints import parse

    assert parse("a.b=pause(1), c=pause(2.5)") == {"a.b": 1.0, "c": 2.5}
    for bad in ("a.b", "a.b=crash", "=pause(1)", "a=pause(-1)"):
        with pytest.raises(ValueError, match="expected name=pause"):
            parse(bad)
    with pytest.raises(ValueError, match="failpoint"):
        Settings(failpoints="tables.import.before_commit=explode")
