"""Device credentials (DESIGN.md section 4a): per-unit MQTT secrets kept only as the broker's hash, and X.509
certificates from the station's CA. What a product's units get is ``core.credentials``; what is recorded is
``db.credentials``; this package makes them."""
