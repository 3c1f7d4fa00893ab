"""Common package of the car-sales pipeline: config, database, logging, queues, run ledger."""
