"""The database layer: every SQL statement of the station lives in this package, one module per group of
tables, each a layer of ``Store`` (station/store.py) over the one below it (connection.py)."""
