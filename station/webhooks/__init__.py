"""Signed webhooks from the events table, the station's durable outbox: signing (signing.py) and the
deliverers, one thread per endpoint in `station serve`'s own process (delivery.py)."""
