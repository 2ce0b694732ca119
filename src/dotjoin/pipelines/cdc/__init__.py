"""Change data capture: PostgreSQL → Debezium → Kafka → Iceberg (issue 12).

The source tables and their publication (:mod:`.source`), Debezium's connector on Kafka Connect
(:mod:`.connector`).
"""
