"""A smoke test run in the cluster as a Kubernetes Job: create it (or find the one a previous
attempt created, by its name), wait until it completes or fails, and say which. Called by the
`kube.run_smoke_test` activity after each step of an upgrade that asks for one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from regatta.models import SmokeTestCheck


class SmokeTestFailed(Exception):
    pass


class SmokeTestRefused(SmokeTestFailed):
    """A smoke test this installation does not run (its image is not allowed): nothing was created."""


def job_name(check_name: str, request_token: str) -> str:
    """A DNS-1123 name unique to this run of this check (the token comes from the workflow)."""
    return f"regatta-smoke-{check_name}"[:50].rstrip("-") + "-" + hashlib.sha256(request_token.encode()).hexdigest()[:10]


def image_allowed(image: str, allowed: Sequence[str]) -> bool:
    """REGATTA_SMOKE_TEST_IMAGES: image names or prefixes ending in `*` (`registry.corp.example/smoke/*`);
    empty: any image."""
    return not allowed or any(image == entry or (entry.endswith("*") and image.startswith(entry[:-1])) for entry in allowed)


def run_smoke_test(api: k8s.ApiClient, check: SmokeTestCheck, *, name: str, job: str, poll_seconds: float = 2,
                   on_poll: Callable[[], None] = lambda: None, allowed_images: Sequence[str] = ()) -> str:
    """Run the check's Job to its end; return what it reported, or raise SmokeTestFailed."""
    if not image_allowed(check.image, allowed_images):
        raise SmokeTestRefused(f"smoke test {name}: image {check.image} is not one REGATTA_SMOKE_TEST_IMAGES allows"
                               f" ({', '.join(allowed_images)})")
    batch = k8s.BatchV1Api(api)
    body = k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=job, namespace=check.namespace, labels={"app.kubernetes.io/managed-by": "regatta",
                                                                             "regatta.dev/health-check": name}),
        spec=k8s.V1JobSpec(
            backoff_limit=0, ttl_seconds_after_finished=3600, active_deadline_seconds=int(check.timeout_seconds),
            template=k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(
                restart_policy="Never", automount_service_account_token=False,
                security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=65534,
                                                          seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
                containers=[k8s.V1Container(
                    name="smoke-test", image=check.image, command=check.command or None,
                    security_context=k8s.V1SecurityContext(allow_privilege_escalation=False, privileged=False,
                                                           read_only_root_filesystem=True,
                                                           capabilities=k8s.V1Capabilities(drop=["ALL"])))]))))
    try:
        batch.create_namespaced_job(check.namespace, body)
    except ApiException as error:
        if error.status != 409:  # 409: a previous attempt created it; wait for that one
            raise
    deadline = time.monotonic() + check.timeout_seconds
    while True:
        status = batch.read_namespaced_job(job, check.namespace).status
        conditions = {c.type: c for c in (status.conditions or []) if c.status == "True"} if status else {}
        if "Complete" in conditions:
            return f"Job {check.namespace}/{job} completed"
        if "Failed" in conditions:
            failed = conditions["Failed"]
            raise SmokeTestFailed(f"health check {name}: smoke test Job {check.namespace}/{job} failed:"
                                  f" {failed.message or failed.reason or 'no message'}")
        if time.monotonic() >= deadline:
            raise SmokeTestFailed(f"health check {name}: smoke test Job {check.namespace}/{job} did not finish within"
                                  f" {check.timeout_seconds:g}s")
        on_poll()
        time.sleep(poll_seconds)
