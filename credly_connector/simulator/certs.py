"""App-registration certificates the simulator generates at start-up.

Each scenario certificate becomes a PEM file (private key + certificate, what credlyctl's
`entra.certificate_path` expects) in the simulator's workdir, and the app record keeps only
the public part and thumbprints, as Entra does.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprints(cert_pem: bytes) -> dict[str, str]:
    """`x5t` / `x5t#S256` (base64url digests of the DER) and the portal's hex thumbprint."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return {
        "x5t": _b64url(hashlib.sha1(der).digest()),
        "x5t#S256": _b64url(hashlib.sha256(der).digest()),
        "thumbprint": hashlib.sha1(der).hexdigest().upper(),
    }


# RSA key generation dominates start-up; simulators in one process reuse keys (the n-th key a
# simulator asks for is the same object each time), which costs nothing in realism.
_KEY_POOL: list[rsa.RSAPrivateKey] = []
_POOL_LOCK = threading.Lock()


def _pooled_key(position: int) -> rsa.RSAPrivateKey:
    with _POOL_LOCK:
        while len(_KEY_POOL) <= position:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[position]


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _self_signed(key: rsa.RSAPrivateKey, common_name: str, not_after: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now - timedelta(days=1), not_after - timedelta(days=2)))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def prepare_certificates(
    app: dict[str, Any], folder: Path, first_key: int = 0
) -> tuple[dict[str, Path], int]:
    """Generate the app's certificates; return name -> PEM path and the next free key position.

    Spec keys: `name`, `end_date` (ISO, default one year ahead), `registered` (false: the
    client holds it but the app does not know it -> AADSTS700027), `wrong_key` (true: the
    client's PEM pairs the registered certificate with another private key -> 700027).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    positions = itertools.count(first_key)
    records: list[dict[str, Any]] = []
    for index, spec in enumerate(app.get("certificates", [])):
        name = str(spec.get("name") or f"cert{index}")
        end = spec.get("end_date")
        not_after = (
            datetime.fromisoformat(str(end).replace("Z", "+00:00"))
            if end
            else datetime.now(UTC) + timedelta(days=365)
        )
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=UTC)
        key = _pooled_key(next(positions))
        cert_pem = _self_signed(key, f"{app.get('display_name', 'app')} {name}", not_after)
        client_key = _pooled_key(next(positions)) if spec.get("wrong_key") else key
        path = folder / f"{app['app_id']}-{name}.pem"
        path.write_bytes(_key_pem(client_key) + cert_pem)
        # portable: on Windows chmod only sets the read-only flag (off here)
        path.chmod(0o600)
        paths[name] = path
        records.append(
            {
                "name": name,
                "key_id": spec.get("key_id") or f"{index:08d}-0000-4000-8000-000000000000",
                "end_date": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "registered": spec.get("registered", True) is not False,
                "public_pem": cert_pem.decode("ascii"),
                **thumbprints(cert_pem),
            }
        )
    app["certificates"] = records
    return paths, next(positions)
