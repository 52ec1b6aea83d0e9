"""Ganeti's gluster storage module, replaced by ganeti-gluster-mountd's: the node's daemon owns every Gluster mount."""
from glusterd_mgr.ganeti_storage import GlusterStorage, GlusterStorageUnit, install

install()  # gnt-node list-storage -t gluster asks the daemon too
