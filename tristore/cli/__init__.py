"""The ``tristore`` command line: object commands, admin commands, the ``dev``
launcher and ``serve``. The entry point is :func:`tristore.cli.main.main`."""
