-- Least privilege, re-applied on every setup (GRANT is idempotent).
-- pipeline owns raw, staging and meta (the migrations run as it); analyst may only read staging.
GRANT USAGE ON SCHEMA staging TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA staging TO analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA staging GRANT SELECT ON TABLES TO analyst;
REVOKE ALL ON SCHEMA raw, meta FROM analyst;
