"""The shell: Twisted's side of the core, where every effect meets the node.

``driver`` runs the core's procedures and carries out their effects through
``system`` (processes, the pool of file-system calls with deadlines, PIDs),
``journal`` (the durable holder table), ``disks`` (the disk files, walked
safely) and ``sync`` (the keyed lock and the one-shot observer); ``node``
assembles them with the probe loop.  Nothing here decides: the core does.
"""
