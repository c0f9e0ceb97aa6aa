"""How each cloud's refusals are read: what a retry can fix, what it cannot, and what means another
operation runs on the cluster (waited for, not retried on a short budget) — by the errors each cloud's
own reference documents, as the SDKs raise them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from google.api_core import exceptions as google_errors

from regatta.clouds import eks, gke
from regatta.models.errors import ErrorType


def aws(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} said so"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "UpdateClusterVersion")


@pytest.mark.parametrize(("code", "status", "error_type", "retryable"), [
    ("ResourceInUseException", 409, ErrorType.OPERATION_IN_PROGRESS, False),
    ("InvalidStateException", 400, ErrorType.UPGRADE_INSIGHTS_ERROR, False),
    ("ClientException", 400, ErrorType.CLOUD_REFUSED, False),
    ("InvalidRequestException", 400, ErrorType.CLOUD_REFUSED, False),
    ("ResourceLimitExceededException", 400, ErrorType.CLOUD_REFUSED, False),
    ("ResourceNotFoundException", 404, ErrorType.NOT_FOUND, False),
    ("ThrottlingException", 429, "ThrottlingException", True),
    ("ServerException", 500, "ServerException", True),
    ("ServiceUnavailableException", 503, "ServiceUnavailableException", True),
])
def test_eks_errors_are_read_by_their_documented_meaning(code, status, error_type, retryable):
    found = eks._cloud_error(aws(code, status), what="the upgrade")
    assert (found.error_type, found.retryable) == (error_type, retryable)


@pytest.mark.parametrize(("code", "status", "retryable"), [
    ("UnauthorizedOperation", 403, False),  # a role without ec2:DescribeSubnets: a warning, never retried
    ("InvalidSubnetID.NotFound", 400, False),
    ("UnsupportedOperation", 400, False),
    ("RequestLimitExceeded", 503, True),  # EC2's throttling
    ("InternalError", 500, True),
    ("Unavailable", 503, True),
])
def test_ec2_errors_beside_eks_are_retried_only_when_waiting_helps(code, status, retryable):
    error = eks._cloud_error(aws(code, status), what="subnets of c's node groups", service="EC2")
    assert error.retryable is retryable and str(error).startswith("EC2 ")
    assert (error.error_type == ErrorType.CLOUD_REFUSED) is not retryable and code in str(error)


def test_ec2_out_of_reach_is_a_refused_read_not_a_stopped_upgrade():
    from botocore.exceptions import EndpointConnectionError

    error = eks._cloud_error(EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com"),
                             what="subnets of c's node groups", service="EC2")
    assert not error.retryable and "could not reach EC2" in str(error)


def test_an_eks_insights_refusal_says_how_to_go_on():
    found = eks._cloud_error(aws("InvalidStateException", 400), what="the upgrade")
    assert "aws eks list-insights" in str(found) and "accept_insights" in str(found)


class Response:
    def __init__(self, body: dict):
        self.body = body

    def json(self) -> dict:
        return self.body


def google(status: str, *, code: int = 400,
           message: str = "Operation operation-1-ab is currently upgrading cluster c. Please wait") -> google_errors.GoogleAPICallError:
    error = google_errors.from_http_status(code, message,
                                           errors=[{"reason": "failedPrecondition" if status == "FAILED_PRECONDITION" else "badRequest"}],
                                           response=Response({"error": {"code": code, "status": status}}))
    return error


def test_gkes_busy_cluster_is_a_400_failed_precondition_and_is_waited_for_not_refused():
    busy = gke._cloud_error(google("FAILED_PRECONDITION"), what="the upgrade")
    assert (busy.error_type, busy.retryable) == (ErrorType.OPERATION_IN_PROGRESS, False)
    bad = gke._cloud_error(google("INVALID_ARGUMENT"), what="the upgrade")
    assert (bad.error_type, bad.retryable) == (ErrorType.CLOUD_REFUSED, False)
    other = gke._cloud_error(google("FAILED_PRECONDITION", message="Node pool general has a pending resize."), what="x")
    assert other.error_type == ErrorType.CLOUD_REFUSED  # a precondition that no wait fixes is said, not waited out
    incompatible = gke._cloud_error(google("FAILED_PRECONDITION", message="Cluster is running incompatible operation"
                                           " operation-17-ab."), what="the upgrade")
    assert incompatible.error_type == ErrorType.OPERATION_IN_PROGRESS
    throttled = gke._cloud_error(google("RESOURCE_EXHAUSTED", code=429), what="the upgrade")
    assert throttled.retryable
