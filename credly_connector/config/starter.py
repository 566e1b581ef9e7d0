"""The commented starter file `credlyctl config init` writes, and writing it safely."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from credly_connector.errors import ConfigError

STARTER = """\
# credlyctl configuration (reference: docs/configuration.md).
# Precedence: command-line flags > CREDLYCTL_<SECTION>_<KEY> environment variables > this file.
# Secrets never need to be written here: use { env = "VARIABLE" } or { file = "/path" }.
# Check this file at any time, offline:  credlyctl validate-config

# Used when several instances exist and neither --instance nor CREDLYCTL_INSTANCE is given.
default_instance = "{name}"

# One instance per Credly organization, as with Microsoft's Credly connector.
[instances.{name}.credly]
# The Organization ID (a GUID), from Credly: Developers section of the organization settings.
org_id = ""
# environment = "production"        # or "sandbox"; base_url is derived from it
# OAuth application (Credly: Developers > OAuth Applications), what Microsoft's connector uses:
client_id = ""
client_secret = { env = "CREDLY_CLIENT_SECRET" }
# ...or an organization authorization token instead (expires after 180 days):
# authorization_token = { env = "CREDLY_AUTHORIZATION_TOKEN" }
# authorization_token_created = 2026-01-31

[instances.{name}.entra]
# The Entra ID app registration that writes the Graph connection (app-only permissions).
tenant_id = ""                       # Directory (tenant) ID, or the tenant's domain name
client_id = ""                       # Application (client) ID
client_secret = { env = "ENTRA_CLIENT_SECRET" }
# client_secret_expires = 2027-01-31 # lets credlyctl warn before the secret expires
# certificate_path = "app.pem"       # instead of a secret: PEM with key and certificate
# auth = "federated_token"           # no stored secret: a CI or Kubernetes token file
# federated_token_file = "/path/token"   # default: $AZURE_FEDERATED_TOKEN_FILE
# auth = "managed_identity"          # no stored secret: the Azure host's identity
# managed_identity_client_id = ""    # a user-assigned identity; unset: system-assigned
# cloud = "global"                   # or "usgov" (GCC High), "usgovdod" (DoD)

[instances.{name}.graph]
# connection_id = "credlybadges"     # 3-32 letters and digits
# connection_name = "Credly badges"

[instances.{name}.sync]
# incremental_interval_days = 1
# full_interval_days = 7
# state_dir = "/var/lib/credlyctl/{name}"
# opt_out = ["someone@contoso.com"]
# max_deletes = 500                  # more deletions than this are held back; 0: no limit

[instances.{name}.network]
# ca_bundle = "/etc/ssl/corp-root.pem"
# proxy = "http://proxy.contoso.com:8080"   # default: $HTTPS_PROXY
# no_proxy = "localhost,.corp.example"     # with proxy only; NO_PROXY syntax
"""


def starter_text(instance: str) -> str:
    return STARTER.replace("{name}", instance)


def write_private(path: Path, text: str, *, force: bool) -> bool:
    """Write `text` readable by its owner only (0600); True when a file was replaced."""
    existed = path.exists()
    if existed and not force:
        raise ConfigError(
            f"{path} already exists.",
            "Pass --force to overwrite it, or --config to write somewhere else.",
            error_id="config-exists",
        )
    if path.is_dir():
        raise ConfigError(f"{path} is a folder.", "Give the path of a file.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A private temporary file renamed into place: never a moment with looser permissions.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".credlyctl-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            # portable: on Windows chmod only sets the read-only flag (off here)
            os.chmod(temp, 0o600)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(
            f"Cannot write {path}: {exc.strerror or type(exc).__name__}.",
            "Check that the folder exists and is writable, or choose another path with --config.",
        ) from None
    return existed
