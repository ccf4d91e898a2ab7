"""A faithful, runnable model of Crucible's dual-queue evaluation platform.

Crucible runs untrusted code submissions ("evaluations"). Its job queue is moving from a home-made
Redis-list queue (executor-1/2) to Celery (its own Redis, executor-3, Flower). This package models
every role of that platform as its own process, configured by environment variables as in the
platform:

========================  ======================================================================
role                      how to run it
========================  ======================================================================
executor-1/2/3            ``python -m system_under_test.executor``      (EXECUTOR_ID, EXECUTOR_PORT)
legacy worker             ``python -m system_under_test.legacy``        (REDIS_URL, LEGACY_EXECUTOR_URLS)
Celery worker             ``celery -A system_under_test.tasks worker -Q evaluation,high_priority,batch,maintenance``
gateway                   ``python -m system_under_test.gateway``       (REDIS_URL, CELERY_BROKER_URL, CELERY_PERCENTAGE)
Flower                    ``celery -A system_under_test.tasks flower``
main Redis, celery-redis  ``python -m system_under_test.redis_server``  (a real ``redis-server``)
========================  ======================================================================

It is not a strawman: the legacy queue keeps its real weaknesses (at-most-once pop, FIFO only, no
retries) and Celery keeps its real defaults (early ack, prefetch 4, visibility timeout 3600 s) unless
the environment says otherwise. The harness exists to find the consequences.
"""
