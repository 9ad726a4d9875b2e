"""Composition: ``up`` builds everything, owns the root TaskGroup and the shutdown order; ``cli``
is the ``dronectl`` command."""
