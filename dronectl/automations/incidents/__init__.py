"""Incident dispatch: ``dispatcher`` takes incidents and coordinates; ``planning`` plans and
reserves a nest; ``serving`` flies one incident (launch or retask, follow, the scene and its
lookout); ``progress`` keeps its state and publishes its milestones; ``restart`` and ``recovery``
pick up the incidents a previous run left open."""
