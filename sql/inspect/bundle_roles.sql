-- Whether the bundle's schema is installed and how many of its roles exist
-- (rollback's view, before it reads the registry). $1: the two role names.
SELECT to_regclass('rlsctl.tenant_tables') IS NOT NULL AND to_regclass('rlsctl.break_glass_log') IS NOT NULL AS installed,
       (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[])) AS roles
