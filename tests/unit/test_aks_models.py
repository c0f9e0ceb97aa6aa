"""The AKS SDK's models are made ready on one thread before any request: its generated models otherwise build their
field tables the first time an object is made, and threads doing that at once get responses back as plain dicts
(Azure/azure-sdk-for-python#47426; seen in `regatta fleet snapshot`, which reads eight clusters at a time)."""

from __future__ import annotations

import inspect

from azure.mgmt.containerservice import models
from azure.mgmt.containerservice._utils.model_base import Model

from regatta.clouds.aks import AksProvider


def test_once_an_aks_adapter_exists_no_model_builds_its_fields_under_a_request():
    AksProvider(endpoint_url="http://127.0.0.1:9")
    classes = [c for _, c in inspect.getmembers(models, inspect.isclass) if issubclass(c, Model)]
    assert len(classes) > 100  # the walk found the SDK's models
    left = [c.__name__ for c in classes if f"{c.__module__}.{c.__qualname__}" not in Model._calculated]
    assert not left, f"these would build their fields on a request's thread: {left}"
    cluster = models.ManagedCluster._deserialize({"location": "westeurope", "properties": {"kubernetesVersion": "1.31"}},
                                                 [])  # a response read after the preparation is a model, not a dict
    assert isinstance(cluster, models.ManagedCluster) and cluster.kubernetes_version == "1.31"
