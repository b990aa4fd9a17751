"""Links encrypted with TLS 1.3 and authenticated against a node's registered ed25519 key.

A node's TLS certificate is self-signed with its node key, the key whose public half the
registry stores as ``pubkey`` and that signs its receipts: one identity for receipts and for
transport. Whoever calls ``https://host:port`` knows the key it expects there (the
registry's, the one a route names, or one given on the command line). It reads the
certificate the address presents once (``LinkTrust.context``), checks that it carries that
key and signs itself, and from then on trusts that certificate alone for the address:
OpenSSL checks it in every handshake, and TLS 1.3's handshake proves the peer holds the
private key. A party without the key cannot pose as the node; frames are sealed with an
AEAD under keys only the two ends hold, so they can be neither read nor altered; TLS's
record sequence numbers refuse a replayed or reordered frame.

The certificate is made of the key alone (fixed names, serial and validity; ed25519
signatures are deterministic), so a node presents the same certificate on every start.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID
from nacl.signing import SigningKey

from sharedllm.errors import LinkUntrusted, PeerError

_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def certificate_pem(key: SigningKey) -> bytes:
    """The node's self-signed certificate, the same bytes for the same key every time."""
    private = Ed25519PrivateKey.from_private_bytes(bytes(key))
    public = bytes(key.verify_key)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "sharedllm node " + public.hex()[:16])]
    )
    serial = int.from_bytes(hashlib.sha256(public).digest()[:16], "big") >> 1 or 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(private, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def server_context(key: SigningKey) -> ssl.SSLContext:
    """TLS 1.3 only, presenting ``certificate_pem(key)``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    private = Ed25519PrivateKey.from_private_bytes(bytes(key)).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # load_cert_chain reads files only: both halves go to a private directory for the call.
    with tempfile.TemporaryDirectory(prefix="sharedllm-tls-") as folder:
        chain, secret = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        chain.write_bytes(certificate_pem(key))
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        ctx.load_cert_chain(chain, secret)
    return ctx


def certificate_key(der: bytes, where: str) -> bytes:
    """The raw ed25519 public key of a self-signed certificate that signs itself with it."""
    try:
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
    except ValueError as exc:
        raise LinkUntrusted(f"{where} presented an unreadable certificate ({exc})") from None
    if not isinstance(public, Ed25519PublicKey):
        raise LinkUntrusted(f"{where} presented a certificate without an ed25519 key")
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        raise LinkUntrusted(f"{where} presented a certificate its key did not sign") from None
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pinned_context(der: bytes) -> ssl.SSLContext:
    """A client context that trusts this one certificate, at any address (routes name nodes
    by URL, relays and NAT change addresses; the key is the identity)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=der)
    return ctx


@dataclass(frozen=True)
class _Pinned:
    key: bytes
    context: ssl.SSLContext


class LinkTrust:
    """The keys this process expects at each https address, and the TLS contexts that
    enforce them. ``trust_on_first_use`` (free networks without a registry) takes the
    first key an address presents when nobody named one, and says so through ``report``."""

    def __init__(
        self, *, trust_on_first_use: bool = False, report: Callable[[str], None] = print
    ) -> None:
        self.trust_on_first_use = trust_on_first_use
        self.report = report
        self._expected: dict[str, frozenset[bytes]] = {}
        self._pinned: dict[str, _Pinned] = {}
        self._reading: dict[str, asyncio.Future[_Pinned]] = {}

    def expect(self, url: str, *keys: bytes) -> None:
        """``url``'s node must hold one of ``keys`` (32 raw bytes each): one, or each key
        of the registrations that claim the same endpoint."""
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError("expected one or more 32-byte ed25519 public keys")
        self._expected[_address(url)] = frozenset(keys)

    def pinned(self, url: str) -> bytes | None:
        """The key the link to ``url`` is pinned to, once one was read and accepted."""
        have = self._pinned.get(_address(url))
        return have.key if have is not None else None

    async def context(self, url: str, timeout: float) -> ssl.SSLContext | None:
        """The context for a call to ``url``: None for plain http, else one that accepts
        only the node's key. Raises ``LinkUntrusted`` (naming the url) when the address
        presents another key, or when no key is known and first use is not trusted."""
        parts = urlsplit(url)
        if parts.scheme != "https":
            return None
        address = _address(url)
        want = self._expected.get(address)
        have = self._pinned.get(address)
        if have is not None and (want is None or have.key in want):
            return have.context
        if want is None and not self.trust_on_first_use:
            raise LinkUntrusted(f"{url}: no key is known for this node", failed_url=url)
        pending = self._reading.get(address)
        if pending is None:
            pending = asyncio.ensure_future(
                self._read(url, parts.hostname or "", parts.port or 443, timeout)
            )
            self._reading[address] = pending
            pending.add_done_callback(lambda _: self._reading.pop(address, None))
        pinned = await asyncio.shield(pending)
        if want is not None and pinned.key not in want:
            expected = " or ".join(sorted("0x" + k.hex()[:16] + "…" for k in want))
            raise LinkUntrusted(
                f"{url} presented key 0x{pinned.key.hex()[:16]}…, expected {expected}",
                failed_url=url,
            )
        if want is None and address not in self._expected:  # said once, however many asked
            self.report(f"trusting {url} on first use: key 0x{pinned.key.hex()}")
            self._expected[address] = frozenset({pinned.key})
        self._pinned[address] = pinned
        return pinned.context

    async def _read(self, url: str, host: str, port: int, timeout: float) -> _Pinned:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.minimum_version = ssl.TLSVersion.TLSv1_3
        probe.check_hostname = False
        probe.verify_mode = ssl.CERT_NONE  # read only: the key is checked below
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=probe, server_hostname=host or None),
                timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise PeerError(
                f"{url}: TLS handshake failed ({type(exc).__name__}: {exc})", failed_url=url
            ) from None
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        if not der:
            raise LinkUntrusted(f"{url} presented no certificate", failed_url=url)
        return _Pinned(certificate_key(der, url), pinned_context(der))


def _address(url: str) -> str:
    """host:port of an https URL, the key of both tables; a malformed URL (peer data, such
    as a registered endpoint) keys as itself, and ``context`` refuses it."""
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or 443}"
    except ValueError:
        return url
