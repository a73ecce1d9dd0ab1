"""Resolution-57 monitoring: indicator registry, periodic reports with evidence, data quality, forecasts.

A layer of its own above ``triage.cases``: it files agencies' difficulties through the cases intake and
writes to the same audit trail, and nothing in ``triage.cases`` knows about it.
"""
