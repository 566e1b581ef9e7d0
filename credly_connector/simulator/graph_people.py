"""`/admin/people/profileSources`, `/admin/people/profilePropertySettings` and
`/applications(appId='...')` (microsoft-graph.md §1.5, entra-msal.md on secret expiry).

Scenario URLs may contain `{graph}`, replaced by the simulated Graph's own root when answered,
so a scenario can say where the built-in Entra source points without knowing the port.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from credly_connector.simulator.core import SimRequest, SimResponse
from credly_connector.simulator.graph_common import (
    APPLICATIONS_READ,
    PEOPLE_READ,
    PEOPLE_WRITE,
    Caller,
    GraphError,
    bad_request,
    read_json_object,
)
from credly_connector.simulator.graph_users import DirectoryLike

DEFAULT_ENTRA_SOURCE_ID = "4ce763dd-9214-4eff-af7c-da491cc3782d"
_SOURCE_BY_KEY = re.compile(r"/admin/people/profileSources\(sourceId='((?:[^']|'')*)'\)$")
_SOURCE_BY_ID = re.compile(r"/admin/people/profileSources/([^/]+)$")
_LEGACY_CONNECTION = re.compile(r"/external/connections/([^/]+)$")
SOURCE_FIELDS = ("displayName", "kind", "localizations", "sourceId", "webUrl")
SETTING_ID = "sim-profile-property-setting-0"


def _binary_thumbprint(thumbprint: Any) -> str | None:
    """Edm.Binary in JSON is base64; Graph puts the certificate's SHA-1 thumbprint there."""
    try:
        return base64.b64encode(bytes.fromhex(str(thumbprint))).decode("ascii")
    except ValueError:
        return None


def _hint(value: Any) -> str | None:
    return value[:3] if isinstance(value, str) and value else None


def _source_not_found(key: str) -> GraphError:
    return GraphError(404, "itemNotFound", f"The profile source '{key}' was not found.")


class PeopleApi:
    def __init__(self, scenario: dict[str, Any], directory: DirectoryLike) -> None:
        self.directory = directory
        self.lock = threading.RLock()
        self.sources: dict[str, dict[str, Any]] = {}  # object id -> source
        specs = scenario.get("profile_sources") or [
            {
                "sourceId": DEFAULT_ENTRA_SOURCE_ID,
                "displayName": "Microsoft Entra ID",
                "kind": "MSEntra",
                "webUrl": "https://entra.microsoft.com",
            }
        ]
        for spec in specs:
            source = {name: copy.deepcopy(spec.get(name)) for name in SOURCE_FIELDS}
            source["localizations"] = source["localizations"] or []
            object_id = str(spec.get("id") or uuid.uuid4())
            source["id"] = object_id
            self.sources[object_id] = source
        urls = scenario.get("prioritized_source_urls")
        if urls is None:
            entra = next(
                (s for s in self.sources.values() if str(s.get("kind")) == "MSEntra"), None
            )
            key = entra["sourceId"] if entra else DEFAULT_ENTRA_SOURCE_ID
            urls = [f"{{graph}}/v1.0/admin/people/profileSources(sourceId='{key}')"]
        # New tenants can have no default (nameless) setting: Microsoft's precedence guide
        # and third-party connectors create one (POST) when the list is empty.
        self.settings: dict[str, dict[str, Any]] = {}
        if scenario.get("default_profile_setting", True):
            self.settings[SETTING_ID] = {
                "id": SETTING_ID,
                "name": None,
                "displayName": None,
                "prioritizedSourceUrls": list(urls),
            }

    @property
    def setting(self) -> dict[str, Any] | None:
        """The nameless setting that orders profile sources, if the tenant has one."""
        return next((s for s in self.settings.values() if not s.get("name")), None)

    # -- control -------------------------------------------------------------------------
    def profile_sources(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.sources.values()))

    def profile_property_settings(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.settings.values()))

    def prioritized_source_ids(self) -> set[str]:
        """Casefolded sourceIds of registered sources named in the prioritized list."""
        found: set[str] = set()
        with self.lock:
            setting = self.setting
            for url in setting["prioritizedSourceUrls"] if setting else []:
                source = self._source_for(str(url).replace("{graph}", ""))
                if source is not None:
                    found.add(str(source.get("sourceId", "")).casefold())
        return found

    # -- helpers -------------------------------------------------------------------------
    def _source_for(self, url: str) -> dict[str, Any] | None:
        path = unquote(urlsplit(url).path)
        match = _SOURCE_BY_KEY.search(path)
        if match:
            return self._by_source_id(match.group(1).replace("''", "'"))
        match = _SOURCE_BY_ID.search(path)
        if match:
            return self.sources.get(match.group(1))
        match = _LEGACY_CONNECTION.search(path)
        return self._by_source_id(match.group(1)) if match else None

    def _by_source_id(self, source_id: str) -> dict[str, Any] | None:
        for source in self.sources.values():
            if str(source.get("sourceId", "")).lower() == source_id.lower():
                return source
        return None

    def _render(self, source: dict[str, Any], base_url: str) -> dict[str, Any]:
        shaped = copy.deepcopy(source)
        if isinstance(shaped.get("webUrl"), str):
            shaped["webUrl"] = shaped["webUrl"].replace("{graph}", base_url)
        return shaped

    def _knows(self, url: str) -> bool:
        """Whether a prioritized source URL names a source that exists ([INFERRED] rule)."""
        if url.rstrip("/") in ("https://login.microsoftonline.com",):
            return True  # the legacy default value shown by the older precedence guide
        return self._source_for(url) is not None

    # -- profile sources -----------------------------------------------------------------
    def list_sources(self, request: SimRequest, caller: Caller) -> SimResponse:
        caller.require(PEOPLE_READ)
        with self.lock:
            value = [self._render(s, request.base_url) for s in self.sources.values()]
        context = f"{request.base_url}/v1.0/$metadata#admin/people/profileSources"
        return SimResponse.json(200, {"@odata.context": context, "value": value})

    def create_source(self, request: SimRequest, caller: Caller) -> SimResponse:
        caller.require(PEOPLE_WRITE)
        body = read_json_object(request)
        for name in ("sourceId", "displayName", "webUrl"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise bad_request(f"The profile source property '{name}' is required.")
        unknown = [k for k in body if k not in SOURCE_FIELDS and not k.startswith("@odata")]
        if unknown:
            raise bad_request(f"Unknown profile source properties: {', '.join(unknown)}.")
        with self.lock:
            if self._by_source_id(body["sourceId"]) is not None:
                raise GraphError(
                    409, "Conflict", f"A profile source with sourceId '{body['sourceId']}' exists."
                )
            source = {name: copy.deepcopy(body.get(name)) for name in SOURCE_FIELDS}
            source["localizations"] = source["localizations"] or []
            object_id = str(uuid.uuid4())
            source["id"] = object_id
            self.sources[object_id] = source
            document = self._render(source, request.base_url)
        context = f"{request.base_url}/v1.0/$metadata#admin/people/profileSources/$entity"
        return SimResponse.json(201, {"@odata.context": context, **document})

    def _find(self, key: str, by_source_id: bool) -> dict[str, Any]:
        source = self._by_source_id(key) if by_source_id else self.sources.get(key)
        if source is None:
            raise _source_not_found(key)
        return source

    def get_source(
        self, request: SimRequest, caller: Caller, key: str, by_source_id: bool
    ) -> SimResponse:
        caller.require(PEOPLE_READ)
        with self.lock:
            document = self._render(self._find(key, by_source_id), request.base_url)
        context = f"{request.base_url}/v1.0/$metadata#admin/people/profileSources/$entity"
        return SimResponse.json(200, {"@odata.context": context, **document})

    def delete_source(
        self, request: SimRequest, caller: Caller, key: str, by_source_id: bool
    ) -> SimResponse:
        caller.require(PEOPLE_WRITE)
        with self.lock:
            source = self._find(key, by_source_id)
            del self.sources[source["id"]]
        return SimResponse.empty(204)

    # -- profile property settings -------------------------------------------------------
    def _render_setting(self, setting: dict[str, Any], base_url: str) -> dict[str, Any]:
        shaped = copy.deepcopy(setting)
        shaped["prioritizedSourceUrls"] = [
            url.replace("{graph}", base_url) for url in shaped["prioritizedSourceUrls"]
        ]
        return shaped

    def list_settings(self, request: SimRequest, caller: Caller) -> SimResponse:
        caller.require(PEOPLE_READ)
        with self.lock:
            value = [self._render_setting(s, request.base_url) for s in self.settings.values()]
        context = f"{request.base_url}/v1.0/$metadata#admin/people/profilePropertySettings"
        return SimResponse.json(200, {"@odata.context": context, "value": value})

    def _setting(self, setting_id: str) -> dict[str, Any]:
        setting = self.settings.get(setting_id)
        if setting is None:
            raise GraphError(404, "itemNotFound", f"The setting '{setting_id}' was not found.")
        return setting

    def get_setting(self, request: SimRequest, caller: Caller, setting_id: str) -> SimResponse:
        caller.require(PEOPLE_READ)
        with self.lock:
            document = self._render_setting(self._setting(setting_id), request.base_url)
        return SimResponse.json(200, document)

    def _checked_urls(self, urls: Any) -> list[str]:
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise bad_request("prioritizedSourceUrls must be a list of URLs.")
        unknown = [url for url in urls if not self._knows(url.replace("{graph}", ""))]
        if unknown:
            # [INFERRED] Graph's check of the URLs is undocumented; rejecting is a guess.
            raise bad_request(f"Unknown profile source URL: {unknown[0]}")
        return list(urls)

    def create_setting(self, request: SimRequest, caller: Caller) -> SimResponse:
        """POST /admin/people/profilePropertySettings (v1.0, PeopleSettings.ReadWrite.All)."""
        caller.require(PEOPLE_WRITE)
        body = read_json_object(request)
        for key in body:
            if key not in ("prioritizedSourceUrls", "displayName", "name", "@odata.type"):
                raise bad_request(f"Unknown profile property setting property: {key}.")
        name = body.get("name") or None
        with self.lock:
            urls = self._checked_urls(body.get("prioritizedSourceUrls", []))
            if name is None and self.setting is not None:
                # The resource allows one nameless setting ([INFERRED] the 409 answer).
                raise GraphError(409, "Conflict", "A default profile property setting exists.")
            setting_id = f"sim-profile-property-setting-{uuid.uuid4().hex[:8]}"
            self.settings[setting_id] = {
                "id": setting_id,
                "name": name,
                "displayName": body.get("displayName"),
                "prioritizedSourceUrls": urls,
            }
            document = self._render_setting(self.settings[setting_id], request.base_url)
        context = f"{request.base_url}/v1.0/$metadata#admin/people/profilePropertySettings/$entity"
        return SimResponse.json(201, {"@odata.context": context, **document})

    def patch_setting(self, request: SimRequest, caller: Caller, setting_id: str) -> SimResponse:
        caller.require(PEOPLE_WRITE)
        body = read_json_object(request)
        for key in body:
            if key not in ("prioritizedSourceUrls", "displayName", "name", "@odata.type"):
                raise bad_request(f"The property '{key}' cannot be changed.")
        with self.lock:
            setting = self._setting(setting_id)
            if body.get("name") not in (None, "") and not setting.get("name"):
                raise bad_request("The default profile property setting keeps no name.")
            urls = body.get("prioritizedSourceUrls", setting["prioritizedSourceUrls"])
            setting["prioritizedSourceUrls"] = self._checked_urls(urls)
            if "displayName" in body:
                setting["displayName"] = body["displayName"]
            document = self._render_setting(setting, request.base_url)
        return SimResponse.json(200, document)

    # -- applications --------------------------------------------------------------------
    def get_application(self, request: SimRequest, caller: Caller, app_id: str) -> SimResponse:
        caller.require(APPLICATIONS_READ)
        app = self.directory.app(app_id)
        if app is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{app_id}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        credentials = [
            {
                "customKeyIdentifier": None,
                "displayName": secret.get("display_name"),
                "endDateTime": secret.get("end_date"),
                # Graph returns the first three characters of the secret (passwordCredential).
                "hint": _hint(secret.get("value")),
                "keyId": secret.get("key_id"),
                "secretText": None,
                "startDateTime": secret.get("start_date"),
            }
            for secret in app.get("secrets") or []
        ]
        certificates = [
            {
                "customKeyIdentifier": _binary_thumbprint(cert.get("thumbprint")),
                "displayName": f"CN={cert.get('name')}",
                "endDateTime": cert.get("end_date"),
                "key": None,  # Graph returns the key only with an explicit $select
                "keyId": cert.get("key_id"),
                "startDateTime": cert.get("start_date"),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
            for cert in app.get("certificates") or []
            if cert.get("registered", True) is not False
        ]
        document = {
            "@odata.context": f"{request.base_url}/v1.0/$metadata#applications/$entity",
            "id": str(app.get("object_id") or app.get("id") or app_id),
            "appId": str(app.get("app_id") or app_id),
            "displayName": app.get("display_name") or app.get("displayName"),
            "passwordCredentials": credentials,
            "keyCredentials": certificates,
        }
        return SimResponse.json(200, document)
