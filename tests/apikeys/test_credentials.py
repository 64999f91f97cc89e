"""Reading client credentials from ``Authorization: Basic`` (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64

import pytest

from service.apikeys.credentials import basic_credentials
from service.errors import InvalidClient


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_client_id_and_secret_are_read_and_form_decoded() -> None:
    assert basic_credentials(basic("cl_1:ak_live_x")) == ("cl_1", "ak_live_x")
    assert basic_credentials(basic("my%20client:a+b%3Ac")) == ("my client", "a b:c")
    assert basic_credentials("basic " + base64.b64encode(b"a:b").decode()) == ("a", "b")


@pytest.mark.parametrize("header", [
    "Bearer abc",                                     # another scheme
    "Basic",                                          # nothing after it
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b":secret").decode(),  # empty client id
    "Basic " + base64.b64encode(b"client:").decode(),  # empty secret
    "Basic Y2xp*W50OnNlY3JldA==",                     # not base64
    "Basic Y2xpZW50OnNlY3JldA",                       # padding missing
    "Basic Y2xpZW50OnNlY3JldA==\u00e9",               # not ASCII
    "Basic " + base64.b64encode(b"cl:\xff\xfe").decode(),  # not UTF-8
])
def test_malformed_credentials_are_an_invalid_client(header: str) -> None:
    with pytest.raises(InvalidClient):
        basic_credentials(header)
