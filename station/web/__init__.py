"""The station's HTTP service: the Ioto device endpoints, the JSON API and (later) the operator pages.

``station.web.app.create_app(config)`` builds the app; ``station.web.server.serve`` runs it. This package
imports nothing on its own, so that ``station`` commands do not pay for Flask unless they serve.
"""
