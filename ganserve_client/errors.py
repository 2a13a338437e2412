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
        message = str(body.get("error") or body.get("detail") or response.reason_phrase)
        field, detail = body.get("field"), body.get("detail")
        problems = _validation_problems(detail)
        if problems:  # BentoML's pydantic refusal: "1 validation error for X" says nothing until the details
            message = f"{message}: " + "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in problems)
            field = field or problems[0][0] or None
        return cls(
            response.status_code,
            message,
            body.get("request_id") or request_id,
            field,
            body.get("limit"),
            detail,
        )


def _validation_problems(detail: Any, most: int = 5) -> list[tuple[str, str]]:
    """(field, message) of each pydantic error in a ``detail`` list; empty for any other detail."""
    if not isinstance(detail, list) or not all(isinstance(d, dict) and "msg" in d for d in detail):
        return []
    return [
        (".".join(str(part) for part in d.get("loc", ()) if part != "body"), str(d["msg"]))
        for d in detail[:most]
    ]
