"""The error the embedded server answers with vLLM's error JSON (its own module: the engine and the adapter
folder checks both raise it)."""

from __future__ import annotations

from typing import Any


class ServingError(Exception):
    """An error the HTTP layer answers with `status` and vLLM's error JSON."""

    TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError",
             503: "ServiceUnavailableError"}

    def __init__(self, status: int, message: str, err_type: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type or self.TYPES.get(status, "BadRequestError")
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.status}}
