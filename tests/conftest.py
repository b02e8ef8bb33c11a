"""Hermetic largescale tests: REVERSAL_CURSE_DATA unset and no network beyond loopback.

Applied per module (before the module's own fixtures) to every `test_largescale*` module, so
a test that silently depended on the variable or on a download fails here instead of passing.
"""
from __future__ import annotations

import ipaddress
import os
import socket

import pytest

HERMETIC_MODULES = ("test_largescale",)
BLOCKED_MESSAGE = "network access is disabled in the tests"


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module", autouse=True)
def hermetic_largescale(request):
    if not request.module.__name__.startswith(HERMETIC_MODULES):
        yield
        return
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise OSError(f"{BLOCKED_MESSAGE} ({address!r})")
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("REVERSAL_CURSE_DATA", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", guarded_connect)
        assert "REVERSAL_CURSE_DATA" not in os.environ
        yield
