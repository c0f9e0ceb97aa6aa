"""Activities that read and shift where services' traffic goes, through `TrafficManager`."""

from __future__ import annotations

from temporalio import activity

from activities.failures import refuse
from regatta.models import Activity, SetTraffic, TrafficRecord
from regatta.models.errors import ErrorType
from regatta.traffic import TrafficError, TrafficManager


class TrafficActivities:
    def __init__(self, traffic: TrafficManager | None):
        self.traffic = traffic

    def _manager(self) -> TrafficManager:
        if self.traffic is None:
            raise refuse("no traffic manager is configured: set REGATTA_TRAFFIC_URL (or REGATTA_SIM_URL) for the worker",
                         error_type=ErrorType.NO_TRAFFIC_MANAGER)
        return self.traffic

    @activity.defn(name=Activity.LIST_TRAFFIC)
    def list_records(self, cluster: str) -> list[TrafficRecord]:
        try:
            return self._manager().records_for(cluster)
        except TrafficError as error:
            if error.retryable:
                raise
            raise refuse(str(error), error_type=ErrorType.TRAFFIC_REFUSED) from error

    @activity.defn(name=Activity.READ_TRAFFIC)
    def read_record(self, service: str) -> TrafficRecord | None:
        """The service's record, or None: no record for it, or no traffic manager configured."""
        if self.traffic is None:
            return None
        try:
            return self.traffic.record(service)
        except TrafficError as error:
            if error.retryable:
                raise
            raise refuse(str(error), error_type=ErrorType.TRAFFIC_REFUSED) from error

    @activity.defn(name=Activity.SET_TRAFFIC)
    def set_weights(self, request: SetTraffic) -> TrafficRecord:
        try:
            return self._manager().set_weights(request.service, request.weights, change_id=request.change_id)
        except TrafficError as error:
            if error.retryable:
                raise
            raise refuse(str(error), error_type=ErrorType.TRAFFIC_REFUSED) from error
