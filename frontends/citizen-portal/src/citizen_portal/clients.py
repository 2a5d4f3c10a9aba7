"""The gateway's public API, one small client per resource (as notifications-admin's
``*_api_client.py``). Each is made per request with the signed-in citizen's token (or none)."""

from __future__ import annotations

from typing import Any

from webkit.api import ApiClient


class ServicesApi(ApiClient):
    async def search(
        self, *, q: str = "", group: str = "", page: int = 1, size: int = 20, sort: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            "/api/v1/services", q=q, group=group, page=page, size=size, sort=sort
        )
        return result

    async def one(self, service_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/services/{service_id}")
        return result


class Open311Api(ApiClient):
    async def services(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/open311/v2/services.json")
        return result

    async def definition(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/open311/v2/services/{code}.json")
        return result


class ServiceRequestsApi(ApiClient):
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/service-requests", body)
        return result

    async def mine(self, *, page: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/api/v1/service-requests", page=page, size=50)
        return result

    async def one(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/service-requests/{request_id}")
        return result


class HelpNearMeApi(ApiClient):
    async def near(self, postcode: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/api/v1/help-near-me", postcode=postcode, limit=5)
        return result


class ProgrammesApi(ApiClient):
    async def one(self, programme_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/programmes/{programme_id}")
        return result


class SessionsApi(ApiClient):
    async def one(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/sessions/{session_id}")
        return result

    async def enrol(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/api/v1/sessions/{session_id}/enrolments", body)
        return result


class EnrolmentsApi(ApiClient):
    async def mine(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/enrolments")
        return result

    async def one(self, enrolment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/enrolments/{enrolment_id}")
        return result

    async def cancel(self, enrolment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/api/v1/enrolments/{enrolment_id}/cancel")
        return result


class PreferencesApi(ApiClient):
    async def mine(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/api/v1/preferences")
        return result

    async def update(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.put("/api/v1/preferences", body)
        return result


class UnsubscribeApi(ApiClient):
    async def describe(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/api/v1/unsubscribe", token=token)
        return result

    async def unsubscribe(self, token: str) -> dict[str, Any]:
        response = await self.request("POST", "/api/v1/unsubscribe", params={"token": token})
        result: dict[str, Any] = response.json()
        return result
