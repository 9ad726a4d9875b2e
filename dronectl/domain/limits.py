"""Limits shared by the config, the API and the console."""

from __future__ import annotations

# Nest numbers go from 1 to this (issue 15: hundreds of nests per instance, several cities from one
# command center). Nest N's simulated endpoints are port bases + N, so it must stay well under 65535.
MAX_NEST_ID = 4000
