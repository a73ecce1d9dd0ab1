"""Case handling: the workflow and its deadlines, intake, casework, campaigns, escalation, audit, accounts.

Uses the store and the NLP layer; knows nothing of HTTP, MLflow or the command line.
"""
