"""The commands of the command line, one module per group: ``run`` (with the VM, observing
and schedule options), ``debug`` and ``repl``, ``dis``; ``minivm/cli.py`` registers them and
dispatches (``explore``, ``experiment`` and ``bench`` register themselves from their own
packages)."""
