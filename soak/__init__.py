"""The soak: the local topology of ``make dev`` under a long stream of events and injected faults,
followed by an invariant checker that proves exactly-once effect per published event.

Not part of the shipped library (the functions' archives carry ``shared/orchestra`` only): it runs
from the repository root with ``make soak`` or ``python -m soak``.
"""
