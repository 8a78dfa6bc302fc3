"""Throwaway TLS certificates for test servers, made with the openssl command.

A small CA signs each server certificate, so a verifying client trusts the CA file and
a certificate for the wrong host name fails only on the name, not on trust.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

LOCAL_NAMES = ("DNS:localhost", "IP:127.0.0.1")
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class ServerCert:
    """A server certificate and key, and the CA file that verifies it."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _openssl(*args: str) -> None:
    """Run openssl; raise with its stderr when it fails."""
    done = subprocess.run(["openssl", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make_ca(directory: Path) -> tuple[Path, Path]:
    """Create a self-signed CA in `directory`; return (ca.pem, ca.key)."""
    ca_file, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", *EC_KEY, "-keyout", str(ca_key), "-out", str(ca_file),
             "-days", "3", "-subj", "/CN=mailticket test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca_file, ca_key


def make_server_cert(directory: Path, ca: tuple[Path, Path], names=LOCAL_NAMES,
                     stem: str = "server") -> ServerCert:
    """Issue a server certificate for subjectAltName `names` signed by `ca`."""
    ca_file, ca_key = ca
    key, csr, cert = (directory / f"{stem}.key", directory / f"{stem}.csr",
                      directory / f"{stem}.pem")
    ext = directory / f"{stem}.ext"
    ext.write_text(f"subjectAltName={','.join(names)}\n"
                   "basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid\n")
    common_name = names[0].split(":", 1)[1]
    _openssl("req", *EC_KEY, "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={common_name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "3", "-extfile", str(ext))
    key.chmod(0o644)  # read by the server after it drops privileges; test-only key
    return ServerCert(ca_file=ca_file, cert_file=cert, key_file=key)


def make_certs(directory: Path, names=LOCAL_NAMES) -> ServerCert:
    """Create a fresh CA and one server certificate for `names` in `directory`."""
    return make_server_cert(directory, make_ca(directory), names)
