"""The inventory: what Regatta knows about each cluster, and the audit trail of every operation.

SQLAlchemy 2 over SQLite by default (a file under REGATTA_HOME) or PostgreSQL through
REGATTA_DATABASE_URL; the schema is owned by the Alembic migrations beside this module.
Used by activities, the CLI and the API; never by workflows.
"""

from regatta.inventory.errors import DrPairError, HoldError, TokenError, UnknownCluster
from regatta.inventory.store import Inventory

__all__ = ["DrPairError", "HoldError", "Inventory", "TokenError", "UnknownCluster"]
