"""The sans-I/O core: every holder and mount decision, with no Twisted and no ``os``.

``machine.Core`` holds the node's volumes and returns procedures that yield
``effects``; the driver (``glusterd_mgr.engine``) carries them out.
"""
