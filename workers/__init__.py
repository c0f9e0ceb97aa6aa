"""The processes that host Regatta's workflows and activities."""
