"""The OData `$filter` subset Graph accepts on users, as microsoft-graph.md §5.1 lists it.

Default (no advanced query headers): `eq` and `in` on the usual string and boolean properties,
`startswith`, `proxyAddresses/any(x:x eq '...')`, `and`/`or`, parentheses. Advanced (needs
`ConsistencyLevel: eventual` and `$count=true`): `ne`, `not`, `endswith`, `assignedLicenses/$count`.
String comparisons are case-insensitive, as the directory's are ([INFERRED] for proxyAddresses).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from credly_connector.simulator.graph_common import GraphError

Predicate = Callable[[dict[str, Any]], bool]

EQ_PROPERTIES = frozenset(
    {
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "userType",
        "accountEnabled",
        "employeeId",
        "jobTitle",
        "department",
        "mailNickname",
    }
)
STARTSWITH_PROPERTIES = frozenset(
    {"displayName", "mail", "userPrincipalName", "givenName", "surname", "mailNickname"}
)
ENDSWITH_PROPERTIES = frozenset({"mail", "userPrincipalName"})
COLLECTION_PROPERTIES = frozenset({"proxyAddresses", "otherMails"})
MAX_NESTING = 50
# Properties whose `eq`/`in`/`any(x:x eq ...)` terms can be answered from an index.
INDEXED_PROPERTIES = frozenset({"id", "userPrincipalName", "mail", "proxyAddresses"})
Keys = frozenset[tuple[str, str]]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w$])"
    r"|(?P<name>[A-Za-z_$][\w$./]*)|(?P<punct>[(),:]))"
)


def unsupported(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def _unknown_property(name: str) -> GraphError:
    return GraphError(
        400,
        "Request_BadRequest",
        f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
    )


@dataclass
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphError(
                400, "Request_BadRequest", f"Syntax error at position {position} in '{text}'."
            )
        kind = match.lastgroup or "punct"
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        tokens.append(_Token(kind, value))
        position = match.end()
    return tokens


def _text_eq(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right) and left is not None


@dataclass
class ParsedFilter:
    predicate: Predicate
    advanced: bool
    properties: set[str] = field(default_factory=set)
    # When set, every matching user has one of these (property, casefolded value) pairs, so
    # a caller may look candidates up in an index instead of scanning the directory.
    keys: Keys | None = None


class _Parser:
    def __init__(self, text: str, user_properties: frozenset[str]) -> None:
        self.tokens = _tokenize(text)
        self.position = 0
        self.advanced = False
        self.properties: set[str] = set()
        self.user_properties = user_properties
        self.depth = 0
        self._keys: dict[int, Keys] = {}
        self._pinned: list[Predicate] = []  # keeps every keyed predicate alive, so ids stay unique
        self._lambda_eq: str | None = None

    def _keyed(self, predicate: Predicate, prop: str, values: list[Any]) -> Predicate:
        if prop in INDEXED_PROPERTIES and all(isinstance(v, str) for v in values):
            self._keys[id(predicate)] = frozenset((prop, str(v).casefold()) for v in values)
            self._pinned.append(predicate)
        return predicate

    # -- token helpers -------------------------------------------------------------------
    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token.kind == "name" and token.text.lower() == word:
            self.position += 1
            return True
        return False

    def _expect(self, kind: str, text: str | None = None) -> _Token:
        token = self._peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            found = token.text if token else "end of filter"
            raise GraphError(
                400, "Request_BadRequest", f"Invalid filter clause: unexpected '{found}'."
            )
        self.position += 1
        return token

    def _literal(self) -> Any:
        token = self._peek()
        if token is None:
            raise GraphError(400, "Request_BadRequest", "Invalid filter clause: missing value.")
        self.position += 1
        if token.kind == "str":
            return token.text
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "name" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "name" and token.text.lower() == "null":
            self.advanced = True
            return None
        raise GraphError(
            400, "Request_BadRequest", f"Invalid filter clause: '{token.text}' is not a value."
        )

    def _property(self, name: str, allowed: frozenset[str]) -> str:
        if name not in self.user_properties:
            raise _unknown_property(name)
        if name not in allowed:
            raise unsupported(
                f"Unsupported or invalid query filter clause specified for property '{name}' "
                "of resource 'User'."
            )
        self.properties.add(name)
        return name

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> ParsedFilter:
        if not self.tokens:
            raise GraphError(400, "Request_BadRequest", "Invalid filter clause: empty filter.")
        predicate = self._or()
        keys = self._keys.get(id(predicate))
        if self._peek() is not None:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid filter clause: unexpected '{self.tokens[self.position].text}'.",
            )
        return ParsedFilter(predicate, self.advanced, self.properties, keys)

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._keyword("or"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]

        def either(user: dict[str, Any]) -> bool:
            return any(part(user) for part in parts)

        part_keys = [self._keys.get(id(part)) for part in parts]
        if all(keys is not None for keys in part_keys):
            self._keys[id(either)] = frozenset().union(*(k for k in part_keys if k))
            self._pinned.append(either)
        return either

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._keyword("and"):
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]

        def both(user: dict[str, Any]) -> bool:
            return all(part(user) for part in parts)

        keyed = [self._keys[id(part)] for part in parts if id(part) in self._keys]
        if keyed:
            self._keys[id(both)] = min(keyed, key=len)
            self._pinned.append(both)
        return both

    def _unary(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise GraphError(400, "Request_BadRequest", "The filter is nested too deeply.")
        try:
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self) -> Predicate:
        if self._keyword("not"):
            self.advanced = True
            inner = self._unary()
            return lambda user: not inner(user)
        token = self._peek()
        if token and token.kind == "punct" and token.text == "(":
            self.position += 1
            inner = self._or()
            self._expect("punct", ")")
            return inner
        return self._comparison()

    def _function(self, name: str) -> Predicate:
        self._expect("punct", "(")
        prop_token = self._expect("name")
        self._expect("punct", ",")
        value = self._literal()
        self._expect("punct", ")")
        if not isinstance(value, str):
            raise GraphError(400, "Request_BadRequest", f"{name} needs a string value.")
        needle = value.casefold()
        if name == "startswith":
            prop = self._property(prop_token.text, STARTSWITH_PROPERTIES)
            return lambda user: str(user.get(prop) or "").casefold().startswith(needle)
        self.advanced = True
        prop = self._property(prop_token.text, ENDSWITH_PROPERTIES)
        return lambda user: str(user.get(prop) or "").casefold().endswith(needle)

    def _comparison(self) -> Predicate:
        token = self._expect("name")
        lowered = token.text.lower()
        if lowered in ("startswith", "endswith"):
            return self._function(lowered)
        if "/" in token.text:
            return self._path(token.text)
        if self._keyword("in"):
            prop = self._property(token.text, EQ_PROPERTIES)
            values = self._list()
            return self._keyed(
                lambda user: any(_text_eq(user.get(prop), value) for value in values),
                prop,
                values,
            )
        operator = self._expect("name").text.lower()
        value = self._literal()
        if operator == "eq":
            prop = self._property(token.text, EQ_PROPERTIES)
            return self._keyed(lambda user: _text_eq(user.get(prop), value), prop, [value])
        if operator == "ne":
            self.advanced = True
            prop = self._property(token.text, EQ_PROPERTIES)
            return lambda user: not _text_eq(user.get(prop), value)
        raise unsupported(f"Unsupported query operator '{operator}' for property '{token.text}'.")

    def _list(self) -> list[Any]:
        self._expect("punct", "(")
        values = [self._literal()]
        while self._peek() is not None and self._peek().text == ",":  # type: ignore[union-attr]
            self.position += 1
            values.append(self._literal())
        self._expect("punct", ")")
        return values

    def _path(self, text: str) -> Predicate:
        head, _, tail = text.partition("/")
        if tail.lower() == "$count" and head == "assignedLicenses":
            self.advanced = True
            self.properties.add(head)
            operator = self._expect("name").text.lower()
            number = self._literal()
            if not isinstance(number, int):
                raise GraphError(400, "Request_BadRequest", "$count compares with a number.")
            compare: dict[str, Callable[[int], bool]] = {
                "eq": lambda n: n == number,
                "ne": lambda n: n != number,
                "gt": lambda n: n > number,
                "ge": lambda n: n >= number,
                "lt": lambda n: n < number,
                "le": lambda n: n <= number,
            }
            if operator not in compare:
                raise unsupported(f"Unsupported $count operator '{operator}'.")
            check = compare[operator]
            return lambda user: check(len(user.get(head) or []))
        if tail.lower() != "any":
            if head not in self.user_properties:
                raise _unknown_property(head)
            raise unsupported(f"Unsupported filter path '{text}'.")
        prop = self._property(head, COLLECTION_PROPERTIES)
        self._expect("punct", "(")
        variable = self._expect("name").text
        self._expect("punct", ":")
        self._lambda_eq = None
        inner = self._lambda_body(variable)
        self._expect("punct", ")")
        matched = self._lambda_eq

        def has(user: dict[str, Any]) -> bool:
            return any(inner(item) for item in user.get(prop) or [])

        return self._keyed(has, prop, [matched]) if matched is not None else has

    def _lambda_body(self, variable: str) -> Callable[[Any], bool]:
        token = self._expect("name")
        lowered = token.text.lower()
        if lowered in ("startswith", "endswith"):
            self._expect("punct", "(")
            if self._expect("name").text != variable:
                raise unsupported("Lambda functions must test the range variable.")
            self._expect("punct", ",")
            value = self._literal()
            self._expect("punct", ")")
            needle = str(value).casefold()
            if lowered == "endswith":
                self.advanced = True
                return lambda item: str(item).casefold().endswith(needle)
            return lambda item: str(item).casefold().startswith(needle)
        if token.text != variable:
            raise unsupported("Lambda expressions must compare the range variable.")
        operator = self._expect("name").text.lower()
        value = self._literal()
        if operator == "eq":
            if isinstance(value, str):
                self._lambda_eq = value
            return lambda item: _text_eq(item, value)
        if operator == "ne":
            self.advanced = True
            return lambda item: not _text_eq(item, value)
        raise unsupported(f"Unsupported lambda operator '{operator}'.")


def parse_user_filter(text: Any, user_properties: frozenset[str]) -> ParsedFilter:
    if not isinstance(text, str):
        raise GraphError(400, "Request_BadRequest", "Invalid filter clause.")
    return _Parser(text, user_properties).parse()
