"""How long `coverage` takes to name the closest user of every unmatched address (L12).

Goal: 4,000 unmatched addresses against 20,000 users in well under a second of work (the old
search compared every address with every user: 115 s measured at that size).

Builds a synthetic directory (first.last@contoso.com, some with digits), unmatched addresses
of four kinds (misspelled work address, same local part at a personal domain, unrelated, name
on the badge) and times the indexed search; then times the old every-user comparison on a
sample and extrapolates, and checks both name the same user on that sample.

    python benchmarks/coverage_closest.py [--users 20000] [--unmatched 4000] [--sample 40]
"""

from __future__ import annotations

import argparse
import platform
import random
import string
import time

from credly_connector.diagnostics.coverage import _ClosestIndex
from credly_connector.graph.models import DirectoryUser
from credly_connector.identity.addresses import normalize_email, primary_smtp
from credly_connector.identity.near_miss import edit_distance

LETTERS = string.ascii_lowercase


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(LETTERS, k=rng.randint(3, 9)))


def directory(count: int, rng: random.Random) -> list[DirectoryUser]:
    users = []
    for i in range(count):
        first, last = _word(rng), _word(rng)
        upn = f"{first}.{last}{i % 10 if i % 3 == 0 else ''}@contoso.com"
        users.append(
            DirectoryUser.from_graph(
                {
                    "id": f"{i:08d}-0000-0000-0000-000000000000",
                    "userPrincipalName": upn,
                    "displayName": f"{first.title()} {last.title()}",
                    "mail": upn,
                    "proxyAddresses": [f"SMTP:{upn}"],
                }
            )
        )
    return users


def unmatched(users: list[DirectoryUser], count: int, rng: random.Random) -> list[str]:
    found = []
    for i in range(count):
        base = rng.choice(users).user_principal_name
        local = base.split("@")[0]
        kind = i % 4
        if kind == 0:
            at = rng.randrange(len(local))
            found.append(f"{local[:at]}{rng.choice(LETTERS)}{local[at + 1 :]}@contoso.com")
        elif kind == 1:
            found.append(f"{local}@outlook.com")
        else:
            found.append(f"{_word(rng)}.{_word(rng)}@example.org")
    return found


def every_user(email: str, users: list[DirectoryUser]) -> str | None:
    """The old search: every address of every user, edit distance each."""
    local = email.split("@", 1)[0]
    best: tuple[int, DirectoryUser] | None = None
    for user in users:
        for address in {user.user_principal_name, primary_smtp(user) or ""} - {""}:
            address = normalize_email(address)
            if address.split("@", 1)[0] == local:
                return user.user_principal_name
            distance = edit_distance(email, address, limit=2)
            if distance <= 2 and (best is None or distance < best[0]):
                best = (distance, user)
    return best[1].user_principal_name if best else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--unmatched", type=int, default=4_000)
    parser.add_argument("--sample", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(12)
    users = directory(args.users, rng)
    emails = unmatched(users, args.unmatched, rng)
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"{args.users} users, {args.unmatched} unmatched addresses")

    start = time.perf_counter()
    index = _ClosestIndex(users)
    built = time.perf_counter() - start
    start = time.perf_counter()
    answers = [index.find(e, 1, None) for e in emails]
    searched = time.perf_counter() - start
    named = sum(1 for a in answers if a.suggestion)
    print(f"indexed: build {built:.2f} s, search {searched:.2f} s, {named} addresses named")

    sample = emails[: args.sample]
    start = time.perf_counter()
    old = [every_user(e, users) for e in sample]
    per_address = (time.perf_counter() - start) / len(sample)
    print(
        f"every-user comparison: {per_address * 1000:.0f} ms per address, "
        f"{per_address * len(emails):.0f} s extrapolated to {len(emails)} addresses"
    )
    same = sum(
        1 for e, o in zip(sample, old, strict=True) if index.find(e, 1, None).suggestion == o
    )
    print(f"same user named on the sample: {same}/{len(sample)}")


if __name__ == "__main__":
    main()
