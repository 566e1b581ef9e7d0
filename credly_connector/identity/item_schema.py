"""The property names of a credlyctl item: the item body (entities.py) fills them, the
connection schema (sync/schema.py) registers them. Here so the pure identity rules need
nothing from sync."""

from __future__ import annotations

ACCOUNT_PROPERTY = "account"
AWARDS_PROPERTY = "awards"
CERTIFICATIONS_PROPERTY = "certifications"
