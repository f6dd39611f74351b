"""The protocol model (model.py) and an explicit-state checker over it (checker.py).

``python -m tests.modelcheck`` runs the checker; ``TRISTORE_LONG=1`` (or
``--long``) the larger bounds.
"""
