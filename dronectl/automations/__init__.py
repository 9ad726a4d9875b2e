"""Automations: the fleet acting on its own, through the operations port like a remote client.

``incidents``: dispatch of the best-placed ready drone to an incident; ``patrols``: black-ice and
congestion patrols; ``lookout``: what a drone's video shows (ice on the road, traffic) and the
response; ``vision``: the image analysis the lookout uses. ``incidents`` and ``patrols`` never
import each other; they share ``lookout`` and the tasking board of ``dronectl.operations``.
"""
