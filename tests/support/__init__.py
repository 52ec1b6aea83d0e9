"""What the tests share, in one place: the real Gluster server and node namespaces they run on
(``glusterlab``, ``nodelab``), the kernel's view of mounts and FUSE clients (``kernel``), the daemon
as a process (``daemon_proc``), the engine driven in a child process (``engine_driver``), Ganeti's
own modules (``ganeti_env``) and version shims (``compat``).  The lab (``lab/``) uses them too.
"""
