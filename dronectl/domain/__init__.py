"""The domain: pure rules of the fleet (no asyncio, no I/O, no vendor SDK).

Geodesy and airspace (``geo``), the city config model (``config``), launch/go-to checks that list
every blocker (``safety``, ``blockers``), the battery model (``energy``, ``drain``), the nest state
machine (``nest_state``), the in-flight guard's decision (``flight_guard``), manual control
(``control_authority``), the error tree (``errors``), injected time (``clock``), incident dispatch
planning (``dispatch/``) and patrol decisions (``patrols/``). Everything above imports from here;
nothing here imports from above (``lint-imports`` checks it).
"""
