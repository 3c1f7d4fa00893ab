-- Advisory locks, each named by a key from db.advisory_key. Loaded by shared/db.py.

-- name: xact_lock
-- Held until the transaction ends.
SELECT pg_advisory_xact_lock(:key)

-- name: connection_lock
-- Held across transactions, until the connection closes.
SELECT pg_advisory_lock(:key)
