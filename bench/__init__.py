"""Benchmarks of ganeti-gluster-mountd against the raw tools (not tests: run ``python3 -m bench``)."""
