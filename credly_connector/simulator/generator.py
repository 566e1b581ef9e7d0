"""Deterministic large scenarios for benchmarks: `generate(users=50_000, badges=200_000, seed=1)`.

The same arguments always give the same scenario (ids, emails, states, dates), so benchmark
figures are comparable between runs and machines. The mix is meant to look like a real
organization: most badges accepted and public, some pending, rejected, revoked, private or
expired; some issued to aliases, personal addresses, misspelled work addresses, another
organization's address, other letter case or former employees (who carry their own names);
some users disabled, unlicensed, without a mailbox, or guests.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

FIRST = [
    "Alex",
    "Ana",
    "Ben",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Gabe",
    "Hana",
    "Ivan",
    "Jo",
    "Kai",
    "Lena",
    "Maya",
    "Nico",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
    "Wen",
    "Xena",
    "Yuri",
    "Zoe",
    "Amir",
    "Bea",
    "Carl",
    "Dev",
    "Eva",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jon",
]
LAST = [
    "Smith",
    "Garcia",
    "Chen",
    "Khan",
    "Novak",
    "Silva",
    "Müller",
    "Rossi",
    "Kim",
    "Okafor",
    "Dubois",
    "Haddad",
    "Larsen",
    "Ito",
    "Kowalski",
    "Nguyen",
    "Brown",
    "Lopez",
    "Singh",
    "Cohen",
    "Murphy",
    "Fischer",
    "Costa",
    "Sato",
    "Ivanova",
    "Moreau",
    "Berg",
]
TEMPLATES = (
    ("Cloud Architect Professional", "Certification"),
    ("Security Engineer Associate", "Certification"),
    ("Data Analyst Certified", "Certification"),
    ("Project Management Practitioner", "Certification"),
    ("Innovation Award", "Experience"),
    ("Mentorship Recognition", "Experience"),
    ("Customer Hero", "Experience"),
    ("Onboarding Completed", "Learning"),
    ("AI Fundamentals", "Learning"),
    ("Hackathon Winner", None),
)
OTHER_ORGANIZATION_DOMAIN = "fabrikam.example"
SKU_E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
NOW = datetime(2026, 11, 28, tzinfo=UTC)
APP_ID = "0b7e4c1d-2a3f-4e5d-8c6b-9a0f1e2d3c4b"
APP_SECRET = "Gn3~sim.GeneratedSecret-6d5c4b3a21"
ROLES = (
    "User.Read.All",
    "ExternalConnection.ReadWrite.OwnedBy",
    "ExternalItem.ReadWrite.OwnedBy",
    "PeopleSettings.ReadWrite.All",
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _users(rng: random.Random, count: int, domain: str) -> list[dict[str, Any]]:
    users = []
    for number in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}{number}".lower().replace("ü", "ue")
        upn = f"{local}@{domain}"
        primary = upn
        if rng.random() < 0.10:  # UPN and primary SMTP differ (renamed or short UPN)
            upn = f"{first[0]}{last}{number}".lower().replace("ü", "ue") + f"@{domain}"
        proxies = [f"SMTP:{primary}"]
        if rng.random() < 0.30:
            proxies.append(f"smtp:{first.lower()}{number}@{domain}")
        user_type = "Member"
        if rng.random() < 0.03:
            user_type = "Guest"
            upn = f"{local}_partner.example#EXT#@{domain}"
        users.append(
            {
                "id": _uuid(rng),
                "userPrincipalName": upn,
                "displayName": f"{first} {last}",
                "mail": primary,
                "proxyAddresses": proxies,
                "accountEnabled": rng.random() >= 0.05,
                "assignedLicenses": [] if rng.random() < 0.05 else [{"skuId": SKU_E3}],
                "userType": user_type,
                "hasMailbox": rng.random() >= 0.02,
            }
        )
    return users


def _recipient(rng: random.Random, user: dict[str, Any], number: int) -> str:
    primary = str(user["mail"])
    roll = rng.random()
    if roll < 0.05:
        aliases = [p[5:] for p in user["proxyAddresses"] if p.startswith("smtp:")]
        return aliases[0] if aliases else primary
    if roll < 0.10:
        return primary.split("@")[0] + "@gmail.example"
    if roll < 0.12:
        return primary.title()
    local, domain = primary.split("@")
    if roll < 0.125:  # a typo in the work address: one letter of the name left out
        name = local.rstrip("0123456789")
        return f"{name[:-1]}{local[len(name) :]}@{domain}"
    if roll < 0.13:  # the address at a previous employer or partner
        return f"{local}@{OTHER_ORGANIZATION_DOMAIN}"
    if roll < 0.15:
        return f"former.employee{number}@{domain}"
    return primary


def _earner_name(user: dict[str, Any], recipient: str, number: int) -> str:
    if recipient.startswith("former.employee"):
        return f"Former Employee{number}"  # someone else: not the user the address was drawn for
    return str(user.get("displayName", ""))


def generate(
    users: int = 50_000,
    badges: int = 200_000,
    seed: int = 1,
    *,
    domain: str = "contoso.com",
    org_id: str = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a",
) -> dict[str, Any]:
    """A scenario with one Credly organization of `badges` badges and `users` directory users."""
    rng = random.Random(seed)
    people = _users(rng, users, domain)
    issuer = {"entities": [{"primary": True, "entity": {"name": "Contoso Ltd"}}]}
    templates = [
        {
            "id": str(uuid.UUID(int=index + 1, version=4)),
            "name": name,
            "type_category": category,
            "image_url": f"https://images.credly.com/templates/{index}.png",
        }
        for index, (name, category) in enumerate(TEMPLATES)
    ]
    issued_badges = []
    for number in range(badges):
        user = (
            people[rng.randrange(len(people))]
            if people
            else {"mail": "x@" + domain, "proxyAddresses": []}
        )
        issued = NOW - timedelta(days=rng.uniform(1, 900))
        roll = rng.random()
        state = (
            "accepted"
            if roll < 0.78
            else "pending"
            if roll < 0.90
            else "rejected"
            if roll < 0.95
            else "revoked"
        )
        accepted = issued + timedelta(days=rng.uniform(0, 10)) if state == "accepted" else None
        if accepted is not None:
            accepted = min(NOW, accepted)  # never in the future: it would sit in every window
        # A rejection or revocation is a later change; derived from the number, not drawn, so
        # every other field keeps the value earlier versions of this generator gave it.
        changed = accepted or issued
        if state in ("rejected", "revoked"):
            changed = min(NOW, issued + timedelta(days=1 + number % 60, hours=number % 24))
        expires = None
        if rng.random() < 0.30:
            expires = issued + timedelta(days=rng.choice((365, 730, 1095)))
        badge_id = _uuid(rng)
        public = state == "accepted" and rng.random() < 0.85  # drawn in the original order
        recipient = _recipient(rng, user, number)
        issued_badges.append(
            {
                "id": badge_id,
                "state": state,
                "public": public,
                "recipient_email": recipient,
                "issued_to": _earner_name(user, recipient, number),
                "issued_at": _iso(issued),
                "accepted_at": _iso(accepted) if accepted else None,
                "updated_at": _iso(changed),
                "expires_at": _iso(expires) if expires else None,
                "badge_url": f"https://www.credly.com/badges/{badge_id}",
                "image_url": f"https://images.credly.com/badges/{badge_id}.png",
                "badge_template": templates[rng.randrange(len(templates))],
                "issuer": issuer,
                "user": {"email": user["mail"]} if state != "pending" else None,
            }
        )
    return {
        "name": f"generated-{users}-{badges}-{seed}",
        "description": "Deterministically generated large organization (benchmarks).",
        "connector": {
            "org_id": org_id,
            "credly_client_id": "generated-sync-client",
            "entra_app_id": APP_ID,
            "connection_id": "credlybadges",
        },
        "credly": {
            "environment": "production",
            "organizations": [
                {
                    "id": org_id,
                    "name": "Contoso Ltd",
                    "vanity_url": "https://www.credly.com/org/contoso",
                    "badges": issued_badges,
                }
            ],
            "oauth_clients": [
                {
                    "client_id": "generated-sync-client",
                    "client_secret": "cs_sim_generated_9Zy8Xw7Vu6Ts5",
                    "organizations": [org_id],
                    "scopes": ["issued_badges"],
                }
            ],
            "authorization_tokens": [],
        },
        "entra": {
            "tenant_id": "c0ffee00-1234-4abc-8def-0123456789ab",
            "domains": [domain],
            "apps": [
                {
                    "app_id": APP_ID,
                    "display_name": "credlyctl sync (generated)",
                    "enabled": True,
                    "roles": list(ROLES),
                    "secrets": [
                        {
                            "key_id": "5f4e3d2c-1b0a-4987-8654-3210fedcba98",
                            "value": APP_SECRET,
                            "end_date": "2027-12-31T00:00:00Z",
                        }
                    ],
                    "certificates": [],
                }
            ],
            "users": people,
        },
        "graph": {"schema_delay_seconds": 0.2},
        "faults": {},
        "switches": {},
    }
