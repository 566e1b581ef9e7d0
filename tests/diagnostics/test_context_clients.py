"""The diagnostics context builds its clients in one place (sync.clients) and closes them."""

from __future__ import annotations

from pathlib import Path

from credly_connector.diagnostics.context import DiagnosticContext
from tests.diagnostics.helpers_settings import make_settings


def test_clients_are_built_lazily_and_closed_with_the_context(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with DiagnosticContext(settings) as ctx:
        credly = ctx.credly()
        graph = ctx.graph()
        other = ctx.credly_for(settings)
        assert ctx.credly() is credly  # one client per context, whichever check asks
        assert graph.tokens is ctx.tokens()
        sessions = [credly.http, graph.http, graph.tokens.http, other.http]
        assert not any(s.is_closed for s in sessions)
    assert all(s.is_closed for s in sessions)


def test_a_credly_only_context_opens_no_microsoft_session(tmp_path: Path) -> None:
    opened: list[str] = []
    from credly_connector.sync.clients import InstanceClients

    clients = InstanceClients(make_settings(tmp_path), on_session=lambda s, _: opened.append(s))
    with clients:
        assert clients.credly is clients.credly
    assert opened == ["credly"]
