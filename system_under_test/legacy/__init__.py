"""The legacy queue, as it is: a Redis list on the main Redis, popped by simple workers.

Faithful to the home-made queue being retired, weaknesses included:

- FIFO only: ``LPUSH`` to submit, ``BRPOP`` to take; priorities are ignored;
- at-most-once: a popped job exists only in the worker's memory, so a worker that dies (or a
  ``BRPOP`` reply lost on the wire) loses it; there is no processing list and no ack;
- no retries: an executor that is down gives the evaluation an ``error`` result, once;
- executor-1 and executor-2 are used round-robin over HTTP.
"""
