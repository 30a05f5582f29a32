"""Signed webhooks from the events table, the station's durable outbox: signing (signing.py) and the
deliverer threads of the server process (delivery.py)."""
