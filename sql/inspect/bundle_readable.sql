-- Whether the session can read the bundle's registry, all three of its
-- tables, and which columns an older rlsctl's registry lacks.
SELECT coalesce(bool_or(t.relname = 'tenant_tables' AND t.readable), false) AS registry,
       coalesce(bool_and(t.readable), false) AND count(*) = 3 AS records,
       coalesce(bool_or(t.relname = 'tenant_tables' AND t.since), false) AS policy_since,
       coalesce(bool_or(t.relname = 'tenant_tables' AND t.digests), false) AS digests
FROM (SELECT c.relname, has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable,
             EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'policy_since'
                     AND NOT a.attisdropped) AS since,
             (SELECT count(*) = 2 FROM pg_attribute a WHERE a.attrelid = c.oid
                     AND a.attname IN ('installed_using_md5', 'installed_check_md5') AND NOT a.attisdropped) AS digests
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'rlsctl' AND c.relname IN ('tenant_tables', 'bundle_history', 'break_glass_log')) t
