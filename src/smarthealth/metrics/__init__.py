"""Prometheus metrics (`GET /metrics`), shared by every worker process.

Importing this package first decides where the workers' metric files live
(`multiprocess.prepare_directory`), because `prometheus_client` picks single- or multi-process
storage when it is imported: every module here that imports `prometheus_client` is imported
after this file has run.
"""

from smarthealth.metrics.multiprocess import prepare_directory

prepare_directory()
