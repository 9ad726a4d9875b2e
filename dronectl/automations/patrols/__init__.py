"""Patrols as the automation: ``service`` starts and ends missions on triggers and schedules,
``flying`` flies one mission (through the operations port, as the actor ``patrol``), ``store``
keeps missions in the audit store. The decisions themselves are pure: ``dronectl.domain.patrols``."""
