"""Site agents: which worker may run an activity, and how long an operation waits for a site's
agent before it says so.

A cluster in a private network names its `site`; its credentials live only with that site's agent
(`regatta worker --site NAME`), which polls its own task queue. Every activity that talks to the
cluster's API (the `kube.` activities, and the `cloud.` ones of a cluster on your own hardware) is
sent there; the managed clouds' APIs, the inventory and the rest stay on the main queue. Called by workflows/pieces/calls.py and workers/main.py.
"""

from __future__ import annotations

import re

from regatta.rules.own_hardware import OWN_HARDWARE

SITE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
# How long a call to a site waits for its agent to pick it up before the operation says it is
# waiting for the agent, doubling each time the agent stays away, up to the cap.
AGENT_ANSWER_SECONDS = 10.0
AGENT_ANSWER_CAP_SECONDS = 300.0


class SiteNameRefused(ValueError):
    pass


def check_site_name(site: str) -> str:
    if not SITE_NAME.match(site):
        raise SiteNameRefused(f"site {site!r}: use lowercase letters, digits and dashes (at most 40), as in the"
                              " inventory's `site` field, e.g. dc1 or factory-berlin")
    return site


def site_task_queue(main_queue: str, site: str) -> str:
    """The task queue a site's agent polls: beside the main one, named after the site."""
    return f"{main_queue}-site-{site}"


def runs_at_site(activity: str, *, provider: str | None = None) -> bool:
    """Whether an activity talks to a cluster's own API, and so must run where the cluster can be
    reached: every `kube.` activity, and for a cluster on your own hardware (provider `kubeconfig`,
    whose "cloud" is its API server) the `cloud.` ones too. A managed cluster's cloud API (EKS, GKE,
    AKS) is public even when its API server is private, so those stay central."""
    return activity.startswith("kube.") or (provider in OWN_HARDWARE and activity.startswith("cloud."))


def reaches_cloud_and_cluster(*, provider: str, site: str | None) -> bool:
    """Whether one worker reaches both a cluster's cloud and its own API, so that one activity may
    use both (an upgrade step and its health gate in one call): every cluster without a site, and
    a cluster on your own hardware at its site. A managed cluster behind a site agent has its
    cloud called centrally and its API at the site: two calls."""
    return site is None or provider in OWN_HARDWARE


def agent_wait_seconds(waits_so_far: int) -> float:
    """How long the next call to an absent agent waits before the operation reports it again."""
    return min(AGENT_ANSWER_CAP_SECONDS, AGENT_ANSWER_SECONDS * float(2 ** min(waits_so_far, 16)))


def waiting_for_agent(site: str, waited_seconds: float) -> str:
    return (f"waiting for the agent of site {site} (no `regatta worker --site {site}` has picked up work for"
            f" {waited_seconds:.0f}s); it carries on when the agent returns")
