"""The daemon's application layer: settings, the front door (JSON-RPC, schemas, metrics) and the service tree.

``glusterd_mgr.daemon`` is the entry point that wires them to the reactor.
"""
