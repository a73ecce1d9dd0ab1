"""Vietnamese text and models: normalising, encoding, routing, moderation, the vector index, themes, metrics.

The bottom layer above config/errors: nothing here knows of the database, cases or HTTP.
"""
