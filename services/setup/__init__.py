"""Setup stage: creates the database, the roles and the schema objects, idempotently and versioned."""
