"""Reading a cluster file (`regatta provision --file cluster.yaml`): YAML into a ProvisionClusterInput, every problem
reported at the file and line that holds it, as a wave file's and a bundle file's are (see examples/cluster.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regatta.formats.yaml_lines import read_model
from regatta.models import ProvisionClusterInput


class ClusterFileError(ValueError):
    pass


def load_cluster_file(path: str | Path, *, defaults: Mapping[str, Any] | None = None,
                      overrides: Mapping[str, Any] | None = None) -> ProvisionClusterInput:
    request, _ = read_model(Path(path), ProvisionClusterInput, what="cluster file", error=ClusterFileError,
                            shape="one mapping with name, provider, region, version and node_pools"
                                  " (see examples/cluster.yaml)", defaults=defaults, overrides=overrides)
    return request
