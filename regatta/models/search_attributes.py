"""The search attributes every operation carries, so the Temporal UI and scripts can list the
fleet's work by cluster, environment, operation type and change ticket (DESIGN rule 7).
Registered on the dev server by `regatta dev` and the tests; set by workflows and starters."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

CLUSTER = SearchAttributeKey.for_keyword("Cluster")
ENVIRONMENT = SearchAttributeKey.for_keyword("Environment")
OPERATION = SearchAttributeKey.for_keyword("Operation")
TICKET = SearchAttributeKey.for_keyword("Ticket")
SEARCH_ATTRIBUTES = (CLUSTER, ENVIRONMENT, OPERATION, TICKET)


def operation_tags(*, operation: str, cluster: str | None = None, environment: str | None = None,
                   ticket: str | None = None) -> TypedSearchAttributes:
    """What an operation is listed by: set as it starts (the CLI, the API, a wave's upgrades), and
    written by the workflow itself where its starter did not (a start from the Temporal UI)."""
    return TypedSearchAttributes([
        *([SearchAttributePair(CLUSTER, cluster)] if cluster is not None else []),
        *([SearchAttributePair(ENVIRONMENT, environment)] if environment is not None else []),
        SearchAttributePair(OPERATION, operation),
        *([SearchAttributePair(TICKET, ticket)] if ticket else []),
    ])

# The memo key under which a one-cluster operation keeps its progress as it ends, so a status read
# of an ended run need not ask a worker to replay its history (workflows/pieces/final_progress.py).
FINAL_PROGRESS_MEMO = "progress"
