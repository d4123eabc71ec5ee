"""A Celery app for the Celery integration tests: the tasks a real worker runs."""
