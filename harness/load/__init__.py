"""`harness load`: Locust users against the stack, faults on an explicit clock, the runbook's lag classes
as a release gate, and a report with plots. One idea per module; the pure ones (fault_specs,
lag_classes, phases, verdict, series) are imported by scenarios/locustfile.py as well, so nothing here
imports Locust or gevent."""
