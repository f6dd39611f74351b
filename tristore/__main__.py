"""``python -m tristore`` is the ``tristore`` command."""

from tristore.cli.main import main

if __name__ == "__main__":
    main()
