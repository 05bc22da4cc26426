"""Monitoring: drift (Evidently), retrain trigger, canary analysis (Prometheus)."""
