"""Webhooks: signing, configuration, and delivery from a real `station serve` to a receiver of the tests."""
