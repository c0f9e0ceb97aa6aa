"""The base of every refusal a rule makes: a request no retry can fix. Its `error_type` becomes the
ApplicationError type a workflow fails with, and the CLI and the API turn it into exit code 2 / a 4xx.
"""

from __future__ import annotations

from regatta.models.errors import ErrorType


class Refusal(ValueError):
    """A request that no retry can fix. `error_type` becomes the ApplicationError type."""

    error_type = ErrorType.INVALID_REQUEST
