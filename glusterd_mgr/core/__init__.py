"""The sans-I/O core: every holder and mount decision, with no Twisted and no ``os``.

The vocabulary (``volume``, ``holders``, ``mountinfo``, ``mounts``, ``policy``,
``fuse_client``, ``volfile_servers``, ``client_log``, ``errors``, ``results``)
and the machine that decides over it (``machine.Core``), whose procedures yield
``effects``; ``glusterd_mgr.shell`` answers them on the node and
``glusterd_mgr.testing`` in memory.  Nothing here imports anything outside
this folder.
"""
