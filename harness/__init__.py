"""The queue-migration harness: parity, chaos, load and a gate for the legacy → Celery move.

The folder tree follows the parts of the design: ``stack`` starts and controls the system under
test, ``faultproxy`` is the Toxiproxy-compatible proxy that injects network faults. See the README.
"""
