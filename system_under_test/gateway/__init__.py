"""The API gateway: accepts evaluations and splits them between the legacy queue and Celery."""
