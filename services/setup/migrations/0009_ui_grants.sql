-- The web UI (services/ui) reads as its own role `ui` (created by setup with the others): the run
-- ledger and lineage in meta, the published star schema in staging, and of raw only the rejected
-- lines it shows as samples. SELECT only: the UI never writes, and a bug in it cannot either.
-- Tables that later migrations or runs create in meta and staging are readable too (default
-- privileges of `pipeline`, which creates them); raw's loaded rows stay out of reach.
GRANT USAGE ON SCHEMA meta, staging, raw TO ui;
GRANT SELECT ON ALL TABLES IN SCHEMA meta TO ui;
GRANT SELECT ON ALL TABLES IN SCHEMA staging TO ui;
GRANT SELECT ON raw.rejected_lines TO ui;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA meta GRANT SELECT ON TABLES TO ui;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA staging GRANT SELECT ON TABLES TO ui;
