"""How long a cluster's version is supported and how old its nodes' images are: the end of
standard support of its control plane's minor version on its cloud (the calendar kept in
`regatta/formats/support_dates.yaml`; the upstream end of life where a cloud has none), the skew
between its control plane and its oldest node pool, and the build date a node image's name
carries (EKS AMI release versions end in YYYYMMDD, AKS node images begin YYYYMM.DD).

Pure: the fleet view, /metrics and `regatta clusters list` call it.
"""

from __future__ import annotations

import re
from datetime import date

from regatta.models import ClusterRecord
from regatta.models.cost import SupportCalendar
from regatta.rules import versions

_EKS_IMAGE = re.compile(r"-(\d{4})(\d{2})(\d{2})$")
_AKS_IMAGE = re.compile(r"-(\d{4})(\d{2})\.(\d{2})\.\d+$")


def end_of_support(cluster: ClusterRecord, calendar: SupportCalendar) -> tuple[date | None, str]:
    """(the date, where it comes from) for the cluster's control-plane minor version; (None, why) when unknown."""
    minor = versions.format_version(versions.minor_version(cluster.control_plane_version))
    own = {"eks": calendar.eks, "gke": calendar.gke, "aks": calendar.aks}.get(cluster.provider, {})
    if minor in own:
        return own[minor], cluster.provider
    if minor in calendar.upstream:
        return calendar.upstream[minor], "upstream"
    return None, f"{minor} is not in the support calendar of {calendar.as_of.isoformat()}"


def support_words(cluster: ClusterRecord, calendar: SupportCalendar, *, today: date) -> str:
    ends, source = end_of_support(cluster, calendar)
    if ends is None:
        return "unknown"
    days = (ends - today).days
    where = "" if source == cluster.provider else f" ({source})"
    if days < 0:
        return f"ended {ends.isoformat()}{where}"
    return f"until {ends.isoformat()}{where}, {days} days"


def skew(cluster: ClusterRecord) -> int:
    """Minor versions between the control plane and its oldest node pool (0: none behind)."""
    if not cluster.node_pools:
        return 0
    plane = versions.minor_version(cluster.control_plane_version)
    oldest = min(versions.minor_version(p.version) for p in cluster.node_pools)
    return max(0, plane[1] - oldest[1]) if plane[0] == oldest[0] else 0


def image_built(provider: str, image: str | None) -> date | None:
    """The build date a node image's name carries; None when it carries none (GKE's, your own)."""
    if not image:
        return None
    found = _EKS_IMAGE.search(image) if provider == "eks" else _AKS_IMAGE.search(image) if provider == "aks" else None
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def oldest_image_age_days(cluster: ClusterRecord, *, today: date) -> int | None:
    """Days since the oldest node image of its pools was built; None when no pool's image says."""
    built = [d for p in cluster.node_pools if (d := image_built(cluster.provider, p.node_image)) is not None]
    return (today - min(built)).days if built else None
