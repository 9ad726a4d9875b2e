"""dronectl: control service for a city police force's fleet of drone docks ("eagle nests")."""

__version__ = "0.1.0"
