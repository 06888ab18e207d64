"""Client authentication over real HTTP: ``needlecheck serve`` with a trusted client, gunicorn with 3 workers.

One token sent many times at once, so that the copies land on different workers: exactly one is accepted, which
holds only if the replay cache is shared by the workers (each worker has its own process and memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.client_tokens import SigningKey, claims, ec_key, mint
from tests.test_e2e_http import PROXY_VARIABLES, _free_port, _stop, _wait_healthy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
ORDER_SIGN = "/cds-services/dry-needling-order-sign"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return ec_key("ehr-2026")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        yield session


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, key: SigningKey, http: requests.Session) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("needlecheck-auth")
    config = data_dir / "needlecheck.toml"
    config.write_text(f'public_base_url = "{BASE}"\n\n[[trusted_clients]]\niss = "{ISS}"\n[[trusted_clients.keys]]\n'
                      + "\n".join(f'{k} = "{v}"' for k, v in key.public_jwk.items()) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES and k != "NEEDLECHECK_DATABASE_URL"}
    env.update(NEEDLECHECK_DATA_DIR=str(data_dir), NEEDLECHECK_CONFIG=str(config), PYTHONUNBUFFERED="1")
    port = _free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "needlecheck", "serve", "--port", str(port), "--workers", "3"],
            cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        problem = _wait_healthy(http, process, base_url)
        if problem:
            pytest.fail(f"needlecheck serve did not start: {problem}\n{log_path.read_text()}", pytrace=False)
        yield base_url
    finally:
        _stop(process)


def body() -> dict[str, Any]:
    return json.loads((FIXTURES / "order-sign/clean-20560-bilateral-trapezius.json").read_text(encoding="utf-8"))


def test_one_token_sent_32_times_at_once_is_accepted_once(served: str, key: SigningKey,
                                                           http: requests.Session) -> None:
    token = mint(key, claims(ISS, BASE + ORDER_SIGN))
    payload = body()

    def send(_: int) -> int:
        return http.post(served + ORDER_SIGN, json=payload, headers={"Authorization": f"Bearer {token}"},
                         timeout=30).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = sorted(pool.map(send, range(32)))
    assert statuses == [200] + [401] * 31


def test_many_fresh_tokens_are_all_accepted(served: str, key: SigningKey, http: requests.Session) -> None:
    payload = body()

    def send(_: int) -> int:
        token = mint(key, claims(ISS, BASE + ORDER_SIGN))
        return http.post(served + ORDER_SIGN, json=payload, headers={"Authorization": f"Bearer {token}"},
                         timeout=30).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(send, range(24))) == {200}


def test_without_a_token_even_loopback_gets_401(served: str, http: requests.Session) -> None:
    response = http.post(served + ORDER_SIGN, json=body(), timeout=30)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert http.get(served + "/cds-services", timeout=30).status_code == 200
