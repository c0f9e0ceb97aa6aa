"""The kubeconfigs Regatta writes for real clouds are the ones their own CLIs write: an exec
plugin that fetches a fresh token, never a stored credential."""

from __future__ import annotations

import pytest

from regatta.formats import kubeconfig


def test_eks_uses_aws_eks_get_token_with_the_clusters_region_and_profile():
    config = kubeconfig.kubeconfig(name="eks-a", server="https://ABC.gr7.us-east-1.eks.amazonaws.com", ca_data="Q0E=",
                                   user=kubeconfig.eks_user(cluster="eks-a", region="us-east-1", profile="prod"))
    plugin = config["users"][0]["user"]["exec"]
    assert plugin["command"] == "aws" and plugin["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert plugin["args"] == ["--region", "us-east-1", "eks", "get-token", "--cluster-name", "eks-a", "--output", "json"]
    assert plugin["env"] == [{"name": "AWS_PROFILE", "value": "prod"}]
    assert config["clusters"][0]["cluster"] == {"server": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
                                                "certificate-authority-data": "Q0E="}
    assert config["current-context"] == "eks-a" and "token" not in config["users"][0]["user"]


def test_gke_and_aks_use_their_own_plugins():
    gke = kubeconfig.gke_user()["exec"]
    assert gke["command"] == "gke-gcloud-auth-plugin" and gke["provideClusterInfo"] is True
    aks = kubeconfig.aks_user()["exec"]
    assert aks["command"] == "kubelogin"
    assert aks["args"] == ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]


def test_a_kubeconfig_cluster_gets_its_own_context_and_nothing_else():
    mine = {
        "current-context": "lab",
        "contexts": [{"name": "lab", "context": {"cluster": "lab-c", "user": "lab-u"}},
                     {"name": "other", "context": {"cluster": "o-c", "user": "o-u"}}],
        "clusters": [{"name": "lab-c", "cluster": {"server": "https://10.0.0.1:6443"}}, {"name": "o-c", "cluster": {}}],
        "users": [{"name": "lab-u", "user": {"token": "t"}}, {"name": "o-u", "user": {"token": "secret"}}],
    }
    picked = kubeconfig.context_of(mine, context=None)
    assert [c["name"] for c in picked["clusters"]] == ["lab-c"] and [u["name"] for u in picked["users"]] == ["lab-u"]
    assert kubeconfig.context_of(mine, context="other")["current-context"] == "other"
    with pytest.raises(KeyError, match="no context 'missing'"):
        kubeconfig.context_of(mine, context="missing")
