"""The exception a server's refusal becomes, with the server's message and request id."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx


class ServerError(Exception):
    """A non-2xx answer: ``status``, the server's ``message``, the ``request_id`` its log repeats, and
    where the server said so, the request ``field`` at fault and the ``limit`` exceeded."""

    def __init__(
        self,
        status: int,
        message: str,
        request_id: str | None = None,
        field: str | None = None,
        limit: int | None = None,
        detail: Any = None,
    ) -> None:
        self.status, self.message, self.request_id = status, message, request_id
        self.field, self.limit, self.detail = field, limit, detail
        where = f" (request {request_id})" if request_id else ""
        super().__init__(f"HTTP {status}: {message}{where}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServerError:
        """Read the service's error body ``{"error", "field"?, "limit"?, "detail"?, "request_id"}``.

        BentoML's own refusals come as a one-element JSON list and its timeouts without a request id; a body
        that is not JSON at all (a proxy's error page) becomes the message, cut short.
        """
        body: Any = None
        with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
            body = response.json()
        if isinstance(body, list) and body and isinstance(body[0], dict):
            body = body[0]
        request_id = response.headers.get("x-request-id")
        if not isinstance(body, dict):
            text = response.text.strip()[:500] or response.reason_phrase
            return cls(response.status_code, text, request_id)
        message = body.get("error") or body.get("detail") or response.reason_phrase
        return cls(
            response.status_code,
            str(message),
            body.get("request_id") or request_id,
            body.get("field"),
            body.get("limit"),
            body.get("detail"),
        )
