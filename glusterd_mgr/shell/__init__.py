"""The shell: Twisted's side of the core, where every effect meets the node.

``driver`` runs the core's procedures, answering locks, time, logs and metrics
itself; ``world`` answers every other effect, one case each, with ``helpers``
(processes), ``pool`` (file-system calls with deadlines), ``procfs`` (/proc
and the mount table), ``tcp``, ``disks`` (disk files, walked safely) and
``journal`` (the durable holder table); ``node`` assembles them with the probe
loop.  Nothing here decides: the core does.
"""
