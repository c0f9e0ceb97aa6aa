"""The one EC2 action Regatta asks, DescribeSubnets, in EC2's own query wire format (a form-encoded POST
to the service's root, answered in XML), so the real boto3 `ec2` client works against the simulator with
the same `endpoint_url` as its `eks` client, as it does against moto's server.

What a subnet answers comes from the fleet file's EKS account: its availability zone (the subnets of
the account take the signed region's zones a, b, c in turn), and `AvailableIpAddressCount` from what
the simulated nodes hold in it (regatta/sim/addresses.py). Source: botocore/data/ec2/2016-11-15/
service-2.json (DescribeSubnets, Subnet) and the EC2 API reference's error codes
(docs/cloud-conformance.md, E17).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from regatta.sim import addresses
from regatta.sim.world import SimError, World

router = APIRouter()
NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
VPC_ID = "vpc-0a1b2c3d4e5f60000"
REQUEST_ID = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"
SERVED = {"Action", "Version", "MaxResults", "NextToken"}  # and SubnetId.N, Filter.N.Name, Filter.N.Value.M
ERROR_CODES = {429: "RequestLimitExceeded", 500: "InternalError", 503: "Unavailable"}


def error_response(error: SimError) -> Response:
    """EC2's XML error envelope, whose Code botocore raises as the ClientError's code."""
    code = error.reason if error.status in (400, 403) else ERROR_CODES.get(error.status, error.reason)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(error.message)}</Message></Error></Errors><RequestID>{REQUEST_ID}</RequestID></Response>")
    return Response(body, status_code=error.status, media_type="text/xml")


def _signed_region(request: Request) -> str:
    scope = request.headers.get("authorization", "").partition("Credential=")[2].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _cidr(index: int, size: int | None) -> str:
    """A block for the subnet: the smallest whose usable addresses (less AWS's five) hold `size`."""
    prefix = 19
    if size is not None:
        prefix = 28
        while prefix > 16 and (1 << (32 - prefix)) - 5 < size:
            prefix -= 1
    return str(ipaddress.ip_network(f"10.{index % 256}.0.0/{prefix}", strict=False))


def _subnet_xml(world: World, index: int, subnet: str, region: str) -> str:
    sizes = world.accounts.eks.subnet_addresses
    zone = f"{region}{addresses.zone_letter(index)}"
    return (f"<item><subnetId>{escape(subnet)}</subnetId><state>available</state><vpcId>{VPC_ID}</vpcId>"
            f"<cidrBlock>{_cidr(index, sizes.get(subnet))}</cidrBlock>"
            f"<availableIpAddressCount>{world.subnet_available(subnet)}</availableIpAddressCount>"
            f"<availabilityZone>{zone}</availabilityZone>"
            f"<defaultForAz>false</defaultForAz><mapPublicIpOnLaunch>false</mapPublicIpOnLaunch>"
            f"<ownerId>{world.accounts.eks.account_id}</ownerId>"
            f"<subnetArn>arn:aws:ec2:{region}:{world.accounts.eks.account_id}:subnet/{escape(subnet)}</subnetArn></item>")


def _filters(form: dict[str, list[str]]) -> dict[str, set[str]]:
    """`Filter.N.Name` and its `Filter.N.Value.M`, by name; only `subnet-id` is served (a filter matching no
    subnet leaves it out: no error, as EC2 answers a filter)."""
    names = {found[1]: values[-1] for key, values in form.items() if (found := re.fullmatch(r"Filter\.(\d+)\.Name", key))}
    filters: dict[str, set[str]] = {name: set() for name in names.values()}
    for key, values in form.items():
        if (found := re.fullmatch(r"Filter\.(\d+)\.Value\.\d+", key)) is not None:
            if found[1] not in names:
                raise SimError(400, "InvalidParameterValue", f"{key} has no Filter.{found[1]}.Name")
            filters[names[found[1]]].update(values)
    unserved = sorted(set(filters) - {"subnet-id"})
    if unserved:
        raise SimError(400, "InvalidParameterValue", f"the simulator does not serve the filter {', '.join(unserved)}")
    return filters


def describe_subnets(world: World, form: dict[str, list[str]], region: str) -> str:
    """The account's subnets, or those `SubnetId.N` names, in the order the account lists them, narrowed by
    the filters. A subnet named by SubnetId that the account does not have is refused by name, as EC2 refuses
    it (InvalidSubnetID.NotFound); paging and filters other than subnet-id are refused as not served, never
    ignored."""
    unserved = sorted(key for key in form if key not in SERVED and not re.fullmatch(r"SubnetId\.\d+", key)
                      and not re.fullmatch(r"Filter\.\d+\.(Name|Value\.\d+)", key))
    if unserved:
        raise SimError(400, "InvalidParameterValue", f"the simulator does not serve {', '.join(unserved)} in DescribeSubnets")
    if "MaxResults" in form or "NextToken" in form:  # DescribeSubnetsMaxResults: min 5, max 1000; a fleet has fewer
        raise SimError(400, "InvalidParameterValue", "the simulator answers DescribeSubnets in one page: leave out"
                                                      " MaxResults and NextToken")
    asked = [value for key, values in sorted(form.items(), key=lambda item: _index(item[0]))
             if re.fullmatch(r"SubnetId\.\d+", key) for value in values]
    account = world.accounts.eks.subnets
    missing = [subnet for subnet in asked if subnet not in account]
    if missing:
        raise SimError(400, "InvalidSubnetID.NotFound", f"The subnet ID '{missing[0]}' does not exist")
    wanted = _filters(form).get("subnet-id")
    chosen = [(index, subnet) for index, subnet in enumerate(account)
              if (not asked or subnet in asked) and (wanted is None or subnet in wanted)]
    items = "".join(_subnet_xml(world, index, subnet, region) for index, subnet in chosen)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSubnetsResponse xmlns="{NAMESPACE}">'
            f"<requestId>{REQUEST_ID}</requestId><subnetSet>{items}</subnetSet></DescribeSubnetsResponse>")


def _index(key: str) -> int:
    found = re.fullmatch(r"SubnetId\.(\d+)", key)
    return int(found[1]) if found else 0


@router.post("/")
async def ec2_action(request: Request) -> Response:
    world: World = request.app.state.world
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    action = (form.get("Action") or [""])[-1]
    try:
        if action != "DescribeSubnets":
            raise SimError(400, "InvalidAction", f"The action {action or '(none)'} is not valid for this web service.")
        if world.ec2_denied:  # a role without ec2:DescribeSubnets (POST /sim/ec2-denied)
            raise SimError(403, "UnauthorizedOperation", "You are not authorized to perform this operation. User:"
                           f" arn:aws:iam::{world.accounts.eks.account_id}:role/regatta is not authorized to perform:"
                           " ec2:DescribeSubnets because no identity-based policy allows the ec2:DescribeSubnets action")
        body = describe_subnets(world, form, _signed_region(request))
    except SimError as error:
        return error_response(error)
    return Response(body, media_type="text/xml")
