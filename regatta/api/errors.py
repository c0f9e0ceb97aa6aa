"""How the API refuses: every refusal is a JSON `{"error": ...}` with a 4xx (or 503 when Temporal
or the simulator does not answer) that says what to fix; never a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from regatta.temporal.admission import StartRefused

STATUS_OF_REFUSAL = {"unknown": 404, "invalid": 422, "conflict": 409}


class ApiError(Exception):
    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code, self.message = status_code, message


def refused_to_start(error: StartRefused) -> ApiError:
    return ApiError(STATUS_OF_REFUSAL[error.kind], str(error))


def readable(error: ValidationError | RequestValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in error.errors())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"the request does not fit: {readable(error)}"}, status_code=422)
