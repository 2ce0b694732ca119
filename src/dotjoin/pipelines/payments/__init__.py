"""Realtime payments and fraud detection (issue 11).

The payments stream is a published contract (:mod:`.contract`, JSON Schemas in ``contract/``): the
detector here, the feature store, the payments domain and the customer-360 capstone consume it.
Topics: ``payments`` (keyed by ``card_id``), ``payments.labels`` (ground truth, when known),
``alerts`` and ``payments.dlq`` (malformed events, with the error).
"""
