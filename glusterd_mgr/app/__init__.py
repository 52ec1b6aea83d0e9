"""The daemon's application shell: typed settings, config watching, sd_notify and the service's ordered start and stop.

``glusterd_mgr.daemon`` is the entry point that wires them to the reactor.
"""
