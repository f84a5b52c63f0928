"""What crosses a process boundary: config, wire messages, scrubbing rules, log format.

Supervisor, workers and API all import from here, so a Struct's producer and consumer are
found by grepping its name.
"""
