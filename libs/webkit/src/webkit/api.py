"""The gateway's public API, as a front-end calls it: one small client class per API resource
(``class ServiceRequestsApi(ApiClient)``), like alphagov/notifications-admin's
``*_api_client.py``, each method one call.

Every call goes to the gateway (never a service directly) as the signed-in user, with their
bearer token. An answer that is not 2xx becomes an :class:`ApiError` carrying the problem+json
``title``, ``detail`` and field errors (``errors: [{field, message}]``), so a view can put
them in the GOV.UK error summary and beside the right inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"


@dataclass
class ApiError(Exception):
    status: int
    title: str
    detail: str = ""
    #: ``{field: message}``: the field is the API's dotted name (``contact.email``).
    errors: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    #: The problem's other members (``unmet_rules``, ``current_version``…).
    extras: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        body: Any = None
        if response.headers.get("content-type", "").split(";")[0].strip() in (
            PROBLEM_JSON,
            "application/json",
        ):
            try:
                body = response.json()
            except ValueError:
                body = None
        if not isinstance(body, dict):
            body = {}
        errors: dict[str, str] = {}
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("field"):
                errors.setdefault(str(item["field"]), str(item.get("message", "is not valid")))
        return cls(
            status=response.status_code,
            title=str(body.get("title") or response.reason_phrase or "Error"),
            detail=str(body.get("detail") or ""),
            errors=errors,
            code=str(body["code"]) if body.get("code") else _code_from_type(body.get("type")),
            extras={k: v for k, v in body.items() if k not in _STANDARD},
        )


_STANDARD = frozenset({"type", "title", "status", "detail", "instance", "errors", "code"})


def _code_from_type(value: Any) -> str | None:
    """The problem's code from its ``type`` URI (``…/problems/not-eligible``)."""
    if isinstance(value, str) and "/" in value and not value.endswith("/"):
        return value.rsplit("/", 1)[1] or None
    return None


class GatewayUnavailable(ApiError):
    pass


class ApiClient:
    """Base of the resource clients: ``self.get/post/...`` with the caller's token."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"accept": "application/json", **(headers or {})}
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        if params:
            params = {k: v for k, v in params.items() if v not in (None, "")}
        try:
            response = await self.http.request(method, path, json=json, params=params, headers=sent)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                503, "Service unavailable", "The council's systems did not answer."
            ) from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params)).json()

    async def post(self, path: str, json: Any = None) -> Any:
        response = await self.request("POST", path, json=json)
        return response.json() if response.content else None

    async def put(self, path: str, json: Any = None) -> Any:
        response = await self.request("PUT", path, json=json)
        return response.json() if response.content else None

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)
