"""The station's HTTP app: the Ioto device endpoints, the JSON API, the operator pages and the line.

``station.web.app.create_app(config)`` builds the app; ``station.serve.server.serve`` runs it. This package
imports nothing on its own, so that ``station`` commands do not pay for Flask unless they serve.
"""
