-- Whether the bundle's schema is installed and how many of its roles exist
-- (rollback's view, before it reads the registry). $1: the two role names.
-- (pg_class, not to_regclass: a schema the session may not use is not an error)
SELECT (SELECT count(*) = 2 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'rlsctl' AND c.relname IN ('tenant_tables', 'break_glass_log')) AS installed,
       (SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[])) AS roles
