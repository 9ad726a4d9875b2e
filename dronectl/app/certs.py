"""``dronectl certs``: a private CA and a server certificate for a test install (TLS for MQTT and HTTPS).

    dronectl certs var/tls [--host broker.example --host 10.0.0.5]

writes ``ca.pem`` (give it to clients: ``--ca-file``, ``mosquitto_sub --cafile``), ``ca.key``,
``server.pem`` and ``server.key`` (for the embedded broker, Mosquitto's listener 8883 and the HTTP
server); the keys with mode 0600. The server certificate names localhost, 127.0.0.1 and ::1 and
every ``--host``. An existing CA in the directory is reused, so certificates for more hosts can be
added later without handing out a new CA. For production use certificates of the force's own CA.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca(directory: Path, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not the EC key dronectl certs writes")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dronectl private CA (test install)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_bytes(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert, key


def make_certs(directory: Path, hosts: list[str]) -> dict[str, Path]:
    """The CA (made once) and a fresh server certificate for localhost and ``hosts``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_cert, ca_key = _ca(directory, now)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in ["127.0.0.1", "::1", *hosts]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "server.key", _key_bytes(key), private=True)
    _write(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    return {name: directory / name for name in ("ca.pem", "ca.key", "server.pem", "server.key")}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, nargs="?", default=Path("var/tls"))
    parser.add_argument("--host", action="append", default=[], help="a name or address the server has")
    ns = parser.parse_args(argv)
    try:
        files = make_certs(ns.directory, ns.host)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"dronectl certs: {exc}\n")
        return 2
    for name, path in files.items():
        sys.stdout.write(f"{name}\t{path}\n")
    return 0
