"""A real Ganeti 3.0 cluster on one machine: nspawn nodes, a replica-3 Gluster, KVM guests (issue 10)."""
