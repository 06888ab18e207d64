"""Trust settings from TOML: the README's production example loads, and every mistake is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from needlecheck.cds_hooks.settings import SettingsError, load_settings
from tests.support.client_tokens import ec_key

README = Path(__file__).resolve().parent.parent / "README.md"
KEY = ec_key("k1").public_jwk


def readme_trust_example() -> str:
    section = README.read_text(encoding="utf-8").split("### Trusted clients", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_the_readme_example_loads(tmp_path: Path) -> None:
    settings = load(tmp_path, readme_trust_example())
    ehr, sandbox, inline = settings.trusted_clients
    assert settings.public_base_url == "https://cds.example.org/needlecheck"
    assert settings.cors_origins == ("https://ehr.example.org",)
    assert ehr.jwks_url == "https://ehr.example.org/.well-known/jwks.json"
    assert ehr.tenants == ("hospital-a", "hospital-b") and ehr.fhir_hosts == ("fhir.ehr.example.org",)
    assert sandbox.jku == ("https://sandbox.cds-hooks.org/.well-known/jwks.json",) and sandbox.jwks_url is None
    assert inline.keys[0]["kid"] == "ehr-b-2026" and inline.fhir_hosts == ("fhir.ehr-b.example.net:8443",)
    assert settings.auth.clock_leeway_seconds == 60 and settings.auth.max_token_age_seconds == 300
    assert not settings.allow_http


def client(**fields: str) -> str:
    lines = "\n".join(f"{name} = {value}" for name, value in fields.items())
    return f'public_base_url = "https://cds.example.org"\n\n[[trusted_clients]]\n{lines}\n'


KEY_TABLE = "\n[[trusted_clients.keys]]\n" + "\n".join(f'{k} = "{v}"' for k, v in KEY.items()) + "\n"


@pytest.mark.parametrize(("text", "named"), [
    ('[[trusted_clients]]\niss = "https://ehr.example.org"\njwks_url = "https://ehr.example.org/jwks"\n',
     "public_base_url"),
    (client(iss='"https://ehr.example.org"', jwks_url='"http://ehr.example.org/jwks"'),
     "trusted_clients[0].jwks_url"),
    (client(iss='"https://ehr.example.org"', jku='["http://ehr.example.org/jwks"]'), "trusted_clients[0].jku"),
    (client(iss='"https://ehr.example.org"', jku='["file:///etc/passwd"]'), "trusted_clients[0].jku"),
    (client(iss='"https://ehr.example.org"'), "needs 'jwks_url', 'keys' or 'jku'"),
    (client(jwks_url='"https://ehr.example.org/jwks"'), "trusted_clients[0].iss"),
    (client(iss='"https://ehr.example.org"', jwks_url='"https://ehr.example.org/jwks"', secret='"x"'),
     "trusted_clients[0].secret"),
    (client(iss='"https://ehr.example.org"', jwks_url='"https://e.example.org/jwks"', fhir_hosts='["https://f.org"]'),
     "trusted_clients[0].fhir_hosts"),
    (client(iss='"https://ehr.example.org"', jwks_url='"https://e.example.org/jwks"', tenants='"a"'),
     "trusted_clients[0].tenants"),
    (client(iss='"https://ehr.example.org"', jwks_url='"https://e.example.org/jwks"')
     + '\n[[trusted_clients]]\niss = "https://ehr.example.org"\njwks_url = "https://e.example.org/jwks"\n',
     "trusted_clients[1].iss"),
    (client(iss='"https://ehr.example.org"') + KEY_TABLE.replace('kid = "k1"\n', ""), "trusted_clients[0].keys[0].kid"),
    (client(iss='"https://ehr.example.org"') + KEY_TABLE + 'd = "private"\n', "trusted_clients[0].keys[0]"),
    (client(iss='"https://ehr.example.org"') + KEY_TABLE.replace('"EC"', '"oct"'), "trusted_clients[0].keys[0]"),
    ('public_base_url = "cds.example.org"\n', "public_base_url"),
    ('cors_origins = ["*"]\n', "cors_origins"),
    ('cors_origins = ["https://ehr.example.org/app"]\n', "cors_origins"),
    ("allow_http = 1\n", "allow_http"),
    ("[auth]\nclock_leeway_seconds = 120\n", "auth.clock_leeway_seconds"),
    ("[auth]\nmax_token_age_seconds = 0\n", "auth.max_token_age_seconds"),
    ("[auth]\nmax_token_age = 300\n", "auth.max_token_age"),
    ("trusted_clients = 3\n", "trusted_clients"),
])
def test_a_bad_trust_setting_is_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load(tmp_path, text)


def test_http_key_urls_are_accepted_only_with_allow_http(tmp_path: Path) -> None:
    text = client(iss='"https://ehr.example.org"', jwks_url='"http://127.0.0.1:9/jwks"')
    settings = load(tmp_path, "allow_http = true\n" + text)
    assert settings.trusted_clients[0].jwks_url == "http://127.0.0.1:9/jwks"


def test_inline_keys_load(tmp_path: Path) -> None:
    settings = load(tmp_path, client(iss='"https://ehr.example.org"') + KEY_TABLE)
    assert settings.trusted_clients[0].keys == (KEY,)
