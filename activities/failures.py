"""How activity failures reach Temporal: what a retry can fix stays a plain exception (the
activity's retry policy backs off and tries again); what it cannot becomes a non-retryable
ApplicationError whose type and message tell the operator what to do (DESIGN rule 4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from regatta.clouds import CloudError
from regatta.inventory import DrPairError, UnknownCluster
from regatta.kube.drain import DrainRefused, DrainTimeout
from regatta.models.errors import ErrorType
from regatta.rules.refusals import Refusal


def refuse(message: str, *, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


@contextmanager
def translated_failures() -> Iterator[None]:
    try:
        yield
    except CloudError as error:
        if error.retryable:
            raise
        raise refuse(str(error), error_type=error.error_type) from error
    except UnknownCluster as error:
        raise refuse(str(error), error_type=ErrorType.UNKNOWN_CLUSTER) from error
    except DrPairError as error:
        raise refuse(str(error), error_type=ErrorType.NOT_A_DR_PAIR) from error
    except DrainRefused as error:
        raise refuse(str(error), error_type=ErrorType.DRAIN_REFUSED) from error
    except DrainTimeout as error:
        raise ApplicationError(
            str(error), {"node": error.node, "pods": error.pods, "budgets": error.budgets},
            type=ErrorType.DRAIN_TIMEOUT, non_retryable=True,
        ) from error
    except Refusal as error:
        raise refuse(str(error), error_type=error.error_type) from error
    except Exception as error:
        # A cluster's API refusing us (kubernetes ApiException 400/401/403/422) will refuse
        # again: stop instead of retrying. Everything else (429, 5xx, timeouts) is retried.
        status = getattr(error, "status", None)
        if isinstance(status, int) and status in (400, 401, 403, 422):
            reason = getattr(error, "reason", "") or ""
            raise refuse(f"the cluster's API refused the request ({status} {reason}): {getattr(error, 'body', '') or error}",
                         error_type=ErrorType.KUBE_REFUSED) from error
        raise
