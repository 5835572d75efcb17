"""NATS decentralized authentication (operator / JWT mode) for the tests,
made here without `nsc` (Debian has none): nkeys, JWTs and credentials
files, and a nats-server configuration that trusts them.

- An nkey is an ed25519 key pair. Its public key is written as base32
  (no padding) of [type prefix byte] + 32 key bytes + CRC-16/XMODEM
  (little-endian) of what precedes; the seed as base32 of
  [seed prefix | type >> 5, (type & 31) << 3] + 32 seed bytes + CRC. The
  type prefixes: operator 'O' (14 << 3), account 'A' (0), user 'U'
  (20 << 3); seed 'S' (18 << 3).
- A JWT is base64url(header) "." base64url(claims) "." base64url(ed25519
  signature of the two), header {"typ": "JWT", "alg": "ed25519-nkey"};
  claims carry "jti" (base32 of the SHA-256 of the claims without it),
  "iat", "iss" (the signer's public key), "sub" (the subject's) and the
  NATS part under "nats" (type, version 2).

Needs python3-cryptography (scripts/install-deps installs it).
"""
import base64
import hashlib
import json
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption,
                                                          PrivateFormat, PublicFormat)

PREFIX_SEED = 18 << 3
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_USER = 20 << 3


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def b32(data):
    return base64.b32encode(data).decode().rstrip("=")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def with_crc(raw):
    return raw + crc16(raw).to_bytes(2, "little")


class NKey:
    def __init__(self, prefix):
        self.prefix = prefix
        self.key = Ed25519PrivateKey.generate()
        self.raw_seed = self.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public(self):
        pub = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b32(with_crc(bytes([self.prefix]) + pub))

    @property
    def seed(self):
        head = bytes([PREFIX_SEED | (self.prefix >> 5), (self.prefix & 31) << 3])
        return b32(with_crc(head + self.raw_seed))

    def sign(self, data):
        return self.key.sign(data)


def jwt(signer, subject, name, nats):
    claims = {"iat": int(time.time()), "iss": signer.public, "name": name,
              "sub": subject.public, "nats": dict(nats, version=2)}
    claims["jti"] = b32(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest())
    header = b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64url(signer.sign(signing_input))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
             "wildcards": True, "conn": -1, "leaf": -1}


class Operator:
    """An operator with a system account and one account with JetStream;
    user_creds() makes a user of that account (or, signed by a stranger
    account the server does not know, one it refuses)."""

    def __init__(self):
        self.key = NKey(PREFIX_OPERATOR)
        self.system = NKey(PREFIX_ACCOUNT)
        self.account = NKey(PREFIX_ACCOUNT)
        self.operator_jwt = jwt(self.key, self.key, "flint-test-operator",
                                {"type": "operator", "system_account": self.system.public})
        self.system_jwt = jwt(self.key, self.system, "SYS",
                              {"type": "account", "limits": dict(UNLIMITED)})
        self.account_jwt = jwt(self.key, self.account, "FLINT", {
            "type": "account",
            "limits": dict(UNLIMITED, mem_storage=-1, disk_storage=-1, streams=-1,
                           consumer=-1)})

    def server_config(self, path):
        """Write a nats-server configuration that trusts this operator
        (resolver MEMORY, both accounts preloaded); returns its path."""
        path.write_text(
            f"operator: {self.operator_jwt}\n"
            f"system_account: {self.system.public}\n"
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f"  {self.system.public}: {self.system_jwt}\n"
            f"  {self.account.public}: {self.account_jwt}\n"
            "}\n")
        return str(path)

    def user_creds(self, path, stranger=False):
        """A credentials file (JWT and seed) of a new user of the account,
        or of an account the server does not know (stranger)."""
        account = NKey(PREFIX_ACCOUNT) if stranger else self.account
        user = NKey(PREFIX_USER)
        token = jwt(account, user, "flintd", {"type": "user", "pub": {}, "sub": {},
                                              "subs": -1, "data": -1, "payload": -1})
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{token}\n"
            "------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed}\n"
            "------END USER NKEY SEED------\n")
        path.chmod(0o600)
        return str(path)
