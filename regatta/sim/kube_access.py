"""The TokenRequest API each simulated cluster serves: `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`
(authentication.k8s.io/v1 TokenRequest, what `kubectl create token` calls) hands out a token for a service
account that expires (`spec.expirationSeconds`, 3600 when unset, 600 at least) and is bound to the account:
deleting the account ends every token it was given. Requests made with the token are judged by RBAC
(regatta/sim/kube_rbac.py). Sources in docs/cloud-conformance.md, "Service accounts and RBAC".
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from regatta.sim.kube_api import reach, timestamp
from regatta.sim.world import SimError

router = APIRouter(prefix="/k8s/{cluster}")
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600  # "may not specify a duration less than 10 minutes"
MAX_SECONDS = 1 << 32


def _invalid(field: str, value: Any, words: str) -> SimError:
    return SimError(422, "Invalid", f'TokenRequest.authentication.k8s.io "" is invalid: {field}: Invalid value:'
                                    f" {value}: {words}",
                    causes=[{"reason": "FieldValueInvalid", "message": f"Invalid value: {value}: {words}", "field": field}])


@router.post("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", status_code=201)
async def request_token(request: Request, cluster: str, namespace: str, name: str) -> JSONResponse:
    world, c = reach(request, cluster, "create_token")
    try:
        body = await request.json()
    except ValueError:
        raise SimError(400, "BadRequest", "the request body is not JSON") from None
    spec = (body or {}).get("spec") or {} if isinstance(body, dict) else {}
    account = c.objects.get(("v1", "serviceaccounts", namespace, name))  # looked up before the request is validated
    if account is None:
        raise SimError(404, "NotFound", f'serviceaccounts "{name}" not found')
    seconds = spec.get("expirationSeconds", DEFAULT_SECONDS)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise SimError(400, "BadRequest", "spec.expirationSeconds: an integer is expected")
    if seconds < MIN_SECONDS:
        raise _invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")
    if seconds > MAX_SECONDS:
        raise _invalid("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")
    audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
    token = f"simsa-{secrets.token_urlsafe(32)}"
    expires = time.time() + seconds
    world.service_account_tokens = {t: bound for t, bound in world.service_account_tokens.items() if bound[4] > time.time()}
    world.service_account_tokens[token] = (c.name, namespace, name, str((account.get("metadata") or {}).get("uid")),
                                           expires)
    return JSONResponse({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef")},
        "status": {"token": token, "expirationTimestamp": timestamp(expires)},
    }, status_code=201)
