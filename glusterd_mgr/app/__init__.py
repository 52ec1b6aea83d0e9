"""The daemon's application layer: settings, the front door (JSON-RPC, schemas, metrics) and the service tree.

``main`` wires them to the reactor; ``glusterd_mgr.daemon`` is its entry point.
"""
