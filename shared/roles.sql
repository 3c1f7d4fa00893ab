-- Statements about database roles, shared by the stages. Loaded by shared/db.py.

-- name: act_as_pipeline
-- For this transaction, act as the `pipeline` role when the session may (a superuser or a member):
-- what a stage creates (raw partitions, rule functions, work tables) then always belongs to
-- `pipeline`, which owns the schemas, and a later run as `pipeline` can use, replace or drop it.
SELECT set_config('role', 'pipeline', true)
 WHERE current_user <> 'pipeline'
   AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pipeline' AND pg_has_role(current_user, oid, 'MEMBER'))
