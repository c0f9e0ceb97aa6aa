"""Where a simulated cloud runs out of addresses for new nodes: what stops a surge upgrade on a real
one long before any node pool maximum does (EKS and GKE raise a pool's size themselves for a surge).

- **EKS**: a node takes addresses from one of its node group's subnets: its own and, under the VPC
  CNI, one for each pod it may run (each pod gets a VPC address from the node's subnet), so
  1 + its max pods. A subnet the fleet file sizes (`accounts.eks.subnet_addresses`) is counted:
  EC2 DescribeSubnets answers its `AvailableIpAddressCount` from what the nodes in it hold, and a
  node that finds no subnet of its group with room is not launched (the node group's update fails
  `InsufficientFreeAddresses`, one of EKS's ErrorCode and NodegroupIssueCode values). A subnet not
  sized is not counted: it answers a /19's usable addresses, whatever runs in it.
- **GKE**: a VPC-native cluster's Pod range (Cluster.clusterIpv4Cidr, a /14 unless the fleet file's
  `cloud` gives one) is cut into one block per node, sized by the pool's max pods per node
  (NodePool.podIpv4CidrSize: /24 for the default 110). NodeNetworkConfig.podIpv4RangeUtilization
  is the share of the range the nodes hold; a node that finds no free block is not created.

Sources: docs/cloud-conformance.md (E17, G13).
"""

from __future__ import annotations

import ipaddress

UNCOUNTED_SUBNET_AVAILABLE = 8187  # a /19's 8,192 addresses less the five AWS keeps in every subnet
GKE_DEFAULT_POD_RANGE = "10.4.0.0/14"  # GKE's default cluster Pod range size
GKE_DEFAULT_MAX_PODS = 110


def eks_node_addresses(max_pods: int) -> int:
    """The addresses an EKS node holds in its subnet: its own and one per pod the VPC CNI may give it."""
    return 1 + max_pods


def gke_pod_cidr_size(max_pods: int) -> int:
    """The prefix of each node's Pod block: the smallest block with at least twice the node's max pods
    addresses (GKE's table: 110 pods a /24, 32 a /26, 8 a /28)."""
    size = 32
    while (1 << (32 - size)) < 2 * max_pods:
        size -= 1
    return size


def range_addresses(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).num_addresses


def subnet_available(size: int | None, held: int) -> int:
    """A subnet's AvailableIpAddressCount: a sized one's usable addresses less what its nodes hold; one not
    sized answers a /19's."""
    return UNCOUNTED_SUBNET_AVAILABLE if size is None else max(0, size - held)


def zone_letter(index: int) -> str:
    """The zone of the account's `index`th subnet: the signed region's a, b, c in turn."""
    return "abc"[index % 3]


def pick_subnet(subnets: list[str], available: dict[str, int | None], need: int) -> str | None:
    """The subnet of a zone a new node goes to: one not counted (None in `available`) if there is one, else the
    counted one with the most room if it has `need`; None if none has."""
    for subnet in subnets:
        if available.get(subnet) is None:
            return subnet
    if not subnets:
        return None
    roomiest = max(subnets, key=lambda subnet: available[subnet] or 0)
    return roomiest if (available[roomiest] or 0) >= need else None


def nodes_that_fit(subnets: list[str], available: dict[str, int | None], need: int, wanted: int) -> int:
    """How many nodes of `need` addresses the subnets hold (a subnet not counted holds all that are wanted)."""
    return sum(wanted if available.get(subnet) is None else (available[subnet] or 0) // need for subnet in subnets)
