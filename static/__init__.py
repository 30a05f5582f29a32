"""Shipped inside the station package: setup.cfg maps this folder to station.static."""
