"""The gateway's API as the console calls it: one small client per resource (as
notifications-admin's ``*_api_client.py``), made per request with the signed-in user's token."""

from __future__ import annotations

from typing import Any

import httpx

from webkit.api import ApiClient, ApiError, GatewayUnavailable


class CatalogueApi(ApiClient):
    """``/api/v1/services``: staff see every status; edits need the entry's ETag."""

    async def search(
        self, *, q: str = "", status: str = "", page: int = 1, size: int = 50
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            "/api/v1/services",
            q=q,
            status=status,
            page=page,
            size=size,
            sort="relevance" if q else "name",
        )
        return result

    async def one(self, service_id: str) -> tuple[dict[str, Any], str]:
        """The entry and its ETag (the version an edit must name in If-Match)."""
        response = await self.request("GET", f"/api/v1/services/{service_id}")
        body: dict[str, Any] = response.json()
        return body, response.headers.get("etag", f'"{body["version"]}"')

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/services", body)
        return result

    async def update(self, service_id: str, changes: dict[str, Any], etag: str) -> dict[str, Any]:
        response = await self.request(
            "PATCH", f"/api/v1/services/{service_id}", json=changes, headers={"if-match": etag}
        )
        result: dict[str, Any] = response.json()
        return result

    async def publish(self, service_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/api/v1/services/{service_id}/publish")
        return result

    async def suspend(self, service_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/services/{service_id}/suspend", {"reason": reason}
        )
        return result

    async def retire(self, service_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/services/{service_id}/retire", {"reason": reason}
        )
        return result

    async def history(self, service_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(f"/api/v1/services/{service_id}/history")
        return result

    async def start_import(self, text: str) -> dict[str, Any]:
        """Start an import job (202; all or nothing, in the background): the file is checked
        first, and a 422 ``ApiError`` names every bad record's row and field (in
        ``extras["records"]``), with no job started."""
        response = await self._raw("POST", "/api/v1/services/import-jobs", text, "text/csv")
        result: dict[str, Any] = response.json()
        return result

    async def import_job(self, job_id: str) -> dict[str, Any]:
        """The job: ``status``, ``rows_done`` of ``rows_total``, ``services`` or ``error``."""
        result: dict[str, Any] = await self.get(f"/api/v1/services/import-jobs/{job_id}")
        return result

    async def export_csv(self) -> str:
        response = await self.request("GET", "/api/v1/services/export", params={"format": "csv"})
        return response.text

    async def _raw(self, method: str, path: str, body: str, content_type: str) -> httpx.Response:
        headers = {"accept": "application/json", "content-type": content_type}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            response = await self.http.request(
                method, path, content=body.encode("utf-8"), headers=headers
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                503, "Service unavailable", "The council's systems did not answer."
            ) from exc
        if response.status_code >= 400:
            error = ApiError.from_response(response)
            # the import's errors carry a row: keep them whole (from_response keeps fields)
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            error.extras["records"] = [
                e for e in (problem.get("errors") or []) if isinstance(e, dict)
            ]
            raise error
        return response


class ServiceRequestsApi(ApiClient):
    """``/api/v1/service-requests``: the queue (staff see every request)."""

    async def queue(
        self,
        *,
        status: str = "",
        service_code: str = "",
        assigned_to: str = "",
        area: str = "",
        page: int = 1,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            "/api/v1/service-requests",
            status=status,
            service_code=service_code,
            assigned_to=assigned_to,
            area=area,
            page=page,
            size=50,
        )
        return result

    async def areas(self) -> list[dict[str, Any]]:
        """The areas the queue filters by: MK postcode districts (code, name)."""
        result: list[dict[str, Any]] = await self.get("/api/v1/service-requests/areas")
        return result

    async def one(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/service-requests/{request_id}")
        return result

    async def update(self, request_id: str, change: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/service-requests/{request_id}/updates", change
        )
        return result


class Open311Api(ApiClient):
    async def services(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/open311/v2/services.json")
        return result


class ProgrammesApi(ApiClient):
    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/programmes")
        return result

    async def one(self, programme_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/programmes/{programme_id}")
        return result

    async def set_status(self, programme_id: str, status: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/programmes/{programme_id}/status", {"status": status}
        )
        return result


class VenuesApi(ApiClient):
    """``/api/v1/venues``: changes need the venue's ETag (If-Match)."""

    async def one(self, venue_id: str) -> tuple[dict[str, Any], str]:
        """The venue and its ETag (the version a change must name in If-Match)."""
        response = await self.request("GET", f"/api/v1/venues/{venue_id}")
        body: dict[str, Any] = response.json()
        return body, response.headers.get("etag", f'"{body["version"]}"')

    async def update(self, venue_id: str, changes: dict[str, Any], etag: str) -> dict[str, Any]:
        response = await self.request(
            "PATCH", f"/api/v1/venues/{venue_id}", json=changes, headers={"if-match": etag}
        )
        result: dict[str, Any] = response.json()
        return result

    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/venues")
        return result

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/venues", body)
        return result


class VouchersApi(ApiClient):
    """``/api/v1/vouchers``: data-SIM voucher stock per connectivity programme."""

    async def stock(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/vouchers/stock")
        return result

    async def add(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/vouchers", body)
        return result

    async def allocate(self, programme_id: str, participant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            "/api/v1/vouchers/allocations",
            {"programme_id": programme_id, "participant_id": participant_id},
        )
        return result


class OutcomesApi(ApiClient):
    """A programme's Essential Digital Skills assessments (staff name the participant)."""

    async def figures(self, programme_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/programmes/{programme_id}/outcomes")
        return result

    async def record(self, programme_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/programmes/{programme_id}/outcomes", body
        )
        return result


class SessionsApi(ApiClient):
    async def find(self, *, programme_id: str = "", upcoming: bool = True) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(
            "/api/v1/sessions", programme_id=programme_id, upcoming=str(upcoming).lower()
        )
        return result

    async def one(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/sessions/{session_id}")
        return result

    async def schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/sessions", body)
        return result

    async def set_capacity(self, session_id: str, capacity: int) -> dict[str, Any]:
        response = await self.request(
            "PATCH", f"/api/v1/sessions/{session_id}", json={"capacity": capacity}
        )
        result: dict[str, Any] = response.json()
        return result

    async def cancel(self, session_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/sessions/{session_id}/cancel", {"reason": reason}
        )
        return result

    async def enrolments(self, session_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(f"/api/v1/sessions/{session_id}/enrolments")
        return result


class EnrolmentsApi(ApiClient):
    async def attendance(self, enrolment_id: str, attended: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/enrolments/{enrolment_id}/attendance", {"attended": attended}
        )
        return result


class DevicesApi(ApiClient):
    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/devices")
        return result

    async def one(self, device_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/devices/{device_id}")
        return result

    async def add(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/devices", body)
        return result

    async def wipe(self, device_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(f"/api/v1/devices/{device_id}/wipe")
        return result

    async def lend(self, device_id: str, participant_id: str, due_at: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/devices/{device_id}/loans",
            {"participant_id": participant_id, "due_at": due_at},
        )
        return result

    async def give_back(self, device_id: str, condition: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/devices/{device_id}/return", {"condition": condition}
        )
        return result


class ReportsApi(ApiClient):
    async def figures(self, programme_id: str = "") -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(
            "/api/v1/reports/figures", programme_id=programme_id
        )
        return result

    async def figures_csv(self, programme_id: str = "") -> str:
        response = await self.request(
            "GET",
            "/api/v1/reports/figures.csv",
            params={"programme_id": programme_id} if programme_id else None,
        )
        return response.text


class TemplatesApi(ApiClient):
    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/templates")
        return result

    async def one(self, template_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/templates/{template_id}")
        return result

    async def preview(self, template_id: str, personalisation: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/templates/{template_id}/preview", {"personalisation": personalisation}
        )
        return result

    async def preview_draft(
        self,
        template_id: str,
        personalisation: dict[str, str],
        *,
        subject: str | None = None,
        body: str | None = None,
    ) -> dict[str, Any]:
        """The preview of an edit not saved yet (or of the saved text when ``body`` and
        ``subject`` are None), placeholders without a value shown as written."""
        draft: dict[str, Any] = {"personalisation": personalisation, "show_missing": True}
        if subject is not None:
            draft["subject"] = subject
        if body is not None:
            draft["body"] = body
        result: dict[str, Any] = await self.post(f"/api/v1/templates/{template_id}/preview", draft)
        return result

    async def update(self, template_id: str, changes: dict[str, str]) -> dict[str, Any]:
        """A new version."""
        result: dict[str, Any] = await self.put(f"/api/v1/templates/{template_id}", changes)
        return result


class NotifyServicesApi(ApiClient):
    """``/api/v1/notify-services`` (admins): services and their API keys."""

    async def all(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/api/v1/notify-services")
        return result

    async def one(self, service_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/api/v1/notify-services/{service_id}")
        return result

    async def create(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post("/api/v1/notify-services", {"name": name})
        return result

    async def keys(self, service_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(
            f"/api/v1/notify-services/{service_id}/api-keys"
        )
        return result

    async def issue_key(self, service_id: str, name: str, key_type: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/notify-services/{service_id}/api-keys",
            {"name": name, "key_type": key_type},
        )
        return result

    async def revoke_key(self, service_id: str, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            f"/api/v1/notify-services/{service_id}/api-keys/{key_id}/revoke"
        )
        return result


class GatewayApiKeysApi(ApiClient):
    """``/api/v1/admin/api-keys`` (the gateway's own, admins): partners' API keys."""

    async def all(self) -> list[dict[str, Any]]:
        result: dict[str, Any] = await self.get("/api/v1/admin/api-keys")
        items: list[dict[str, Any]] = result["items"]
        return items

    async def create(self, name: str, role: str, scopes: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = await self.post(
            "/api/v1/admin/api-keys", {"name": name, "role": role, "scopes": scopes}
        )
        return result

    async def revoke(self, key_id: str) -> None:
        await self.delete(f"/api/v1/admin/api-keys/{key_id}")
