"""The credential msal signs in with: a secret, a certificate, a federated token or nothing.

Each reader raises `ConfigError` with the file and the fix when the credential cannot be used,
and registers whatever it reads with `secrets` so it is scrubbed from any output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from credly_connector.config.resolved import EntraSettings
from credly_connector.config.workload_identity import FederatedTokenFile
from credly_connector.errors import ConfigError
from credly_connector.secrets import register_secret_value

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s:,\-]*?-----END \1-----", re.DOTALL
)
# The audience Microsoft recommends for a federated identity credential (Entra admin center
# default; GitHub's azure/login requests it).
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


def split_pem(text: str) -> tuple[str | None, str | None]:
    """The private key block and the certificate block(s) of a PEM bundle."""
    key: str | None = None
    certs: list[str] = []
    for match in _PEM_BLOCK.finditer(text):
        label = match.group(1)
        if "PRIVATE KEY" in label and key is None:
            key = match.group(0).strip() + "\n"
        elif label == "CERTIFICATE":
            certs.append(match.group(0).strip() + "\n")
    return key, ("".join(certs) if certs else None)


def certificate_credential(settings: EntraSettings) -> dict[str, str]:
    """msal's credential for a PEM holding the private key and the certificate."""
    path = settings.certificate_path
    assert path is not None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"the certificate file {path} cannot be read ({exc.__class__.__name__})",
            "entra.certificate_path must name a PEM file holding the private key and "
            "the certificate.",
            error_id="entra.certificate_file",
        ) from None
    key, cert = split_pem(text)
    if key is None or cert is None:
        missing = "private key" if key is None else "certificate"
        raise ConfigError(
            f"the PEM file {path} has no {missing}",
            "Put both the private key and the public certificate in that PEM file "
            "(e.g. cat key.pem cert.pem > credlyctl.pem).",
            error_id="entra.certificate_file",
        )
    register_secret_value(key)
    password = settings.certificate_password.reveal() if settings.certificate_password else None
    _check_private_key(path, key, password)
    credential = {"private_key": key, "public_certificate": cert}
    if password is not None:
        credential["passphrase"] = password
    return credential


def _check_private_key(path: Path, key: str, password: str | None) -> None:
    """Open the key here, so a wrong password or key type gets its own cause (finding L4)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        loaded = load_pem_private_key(key.encode(), password.encode() if password else None)
    except TypeError:
        if password is None:
            raise ConfigError(
                f"the private key in {path} is encrypted and no password is configured",
                'Set entra.certificate_password = { env = "VARIABLE" } to the key\'s password.',
                error_id="entra.certificate_password",
            ) from None
        raise ConfigError(
            f"entra.certificate_password is set, but the private key in {path} is not encrypted",
            "Remove entra.certificate_password.",
            error_id="entra.certificate_password",
        ) from None
    except ValueError:
        if password is not None:
            raise ConfigError(
                f"the private key in {path} cannot be decrypted with entra.certificate_password",
                "Check the password the secret reference points at (it is the one used when "
                "the key was exported), or export the key again.",
                error_id="entra.certificate_password",
            ) from None
        raise ConfigError(
            f"the private key in {path} cannot be read",
            "The certificate PEM must hold an RSA private key and its certificate; check "
            "entra.certificate_path.",
            error_id="entra.credential",
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(
            f"the private key in {path} is not an RSA key",
            "Entra ID signs app assertions with RSA: the certificate PEM must hold an RSA "
            "private key and its certificate; check entra.certificate_path.",
            error_id="entra.credential",
        )


def federated_credential(settings: EntraSettings) -> dict[str, Callable[[], str]]:
    assert settings.federated_token_file is not None
    reader = FederatedTokenFile(settings.federated_token_file)
    reader.read()  # fail before any request when the file is missing
    return {"client_assertion": reader}


def managed_identity(settings: EntraSettings) -> dict[str, Any]:
    """msal's description of the identity: system-assigned, or user-assigned by client id."""
    if settings.managed_identity_client_id:
        return {"ManagedIdentityIdType": "ClientId", "Id": settings.managed_identity_client_id}
    return {"ManagedIdentityIdType": "SystemAssigned", "Id": None}
