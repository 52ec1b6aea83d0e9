"""ganeti-gluster-mountd: one daemon per Ganeti node that owns every Gluster mount."""

__version__ = "0.1.0"
