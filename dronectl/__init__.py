"""dronectl: control service for a city police force's fleet of drone docks ("eagle nests")."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dronectl")  # pyproject.toml's version: one source
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
