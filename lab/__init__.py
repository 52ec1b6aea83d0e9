"""A real Ganeti cluster (3.0 or 3.1) on one machine: nspawn nodes, a replica-3 Gluster, KVM guests."""
