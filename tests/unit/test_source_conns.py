"""Pools of source connections: one per checked target, least recently used closed first.

A pool is what lets one asset's GET reuse another's connection, so its key is what makes
reuse safe: the scheme, the checked address, the port, the name TLS verifies and the CA
bundle it trusts. Two targets that differ in any of them never share a connection.
"""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from genblaze_s3.transfer import TransferError
from genblaze_s3.transfer.source_conns import PinnedPools, tls_context
from genblaze_s3.transfer.urlguard import Target


def _target(host: str = "cdn.example.com", scheme: str = "https", port: int = 443) -> Target:
    return Target(f"{scheme}://{host}/a.png", scheme, host, port, "/a.png", None)


def test_a_pool_per_checked_target(tmp_path: Path) -> None:
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(Path(certifi.where()).read_bytes())
    pools = PinnedPools()
    one = pools.pool(_target(), "93.184.216.34", None)
    assert pools.pool(_target(), "93.184.216.34", None) is one
    assert pools.pool(_target(), "93.184.216.35", None) is not one  # another address
    assert pools.pool(_target("other.example.com"), "93.184.216.34", None) is not one  # name
    assert pools.pool(_target(port=8443), "93.184.216.34", None) is not one
    assert pools.pool(_target(scheme="http", port=443), "93.184.216.34", None) is not one
    assert pools.pool(_target(), "93.184.216.34", str(other_ca)) is not one  # CA
    pools.close()


def test_the_least_recently_used_pool_is_closed_first() -> None:
    pools = PinnedPools(max_pools=2)
    first = pools.pool(_target("a.example.com"), "93.184.216.34", None)
    second = pools.pool(_target("b.example.com"), "93.184.216.34", None)
    assert pools.pool(_target("a.example.com"), "93.184.216.34", None) is first  # used again
    pools.pool(_target("c.example.com"), "93.184.216.34", None)  # one too many
    assert pools.pool(_target("a.example.com"), "93.184.216.34", None) is first
    assert pools.pool(_target("b.example.com"), "93.184.216.34", None) is not second
    pools.close()


def test_one_tls_context_per_ca_bundle_verifying_names() -> None:
    import ssl

    default = tls_context(None)
    assert tls_context(None) is default  # the CA bundle is loaded once per process
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    assert default.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_ca_bundle_that_cannot_be_loaded_is_a_tls_failure(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    for bundle in (str(tmp_path / "missing.pem"), str(not_pem)):
        with pytest.raises(TransferError) as info:
            PinnedPools().pool(_target(), "93.184.216.34", bundle)
        assert info.value.code == "source_tls_failed", info.value
        assert "CA bundle" in str(info.value)
