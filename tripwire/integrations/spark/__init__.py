"""Apache Spark: `SparkIntegration` for the driver, `SparkWorkerIntegration` for workers.

sentry_sdk 2.75's module layout: ``spark_driver`` and ``spark_worker``.
"""

from __future__ import annotations

from tripwire.integrations.spark.spark_driver import SparkIntegration
from tripwire.integrations.spark.spark_worker import SparkWorkerIntegration

__all__ = ["SparkIntegration", "SparkWorkerIntegration"]
