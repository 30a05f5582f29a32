"""Serving the app: the HTTP server and its process (server.py), the one writer that group-commits every
write of the service (writer.py), and the threads kept for devices (reserve.py)."""
