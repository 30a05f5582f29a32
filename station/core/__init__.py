"""The rules every other part calls: the UCI format (uci.py), the life cycle (lifecycle.py), the field
limits (fields.py), the errors users see (errors.py) and what the store hands out (models.py)."""
