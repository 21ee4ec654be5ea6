-- Whether the bundle's schema is there, readable, and as apply makes it.
-- $1: app role; $2: break-glass role; $3: the helper's body as the bundle writes it;
-- $4: the shadow function's body as the bundle writes it for the tenant setting.
-- The bundle's tables are looked up in pg_class, never by name through
-- to_regclass: that needs USAGE on the schema, and a schema planted by a role
-- the session cannot reach must be reported (PRE008), not an error.
WITH app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     bundle_table(name, oid) AS (
         SELECT c.relname::text, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'rlsctl' AND c.relname IN ('tenant_tables', 'bundle_history', 'break_glass_log')),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $2),
     helper AS (SELECT p.* FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'rlsctl' AND p.proname = 'null_tenant_counts' AND p.pronargs = 0),
     shadow AS (SELECT p.* FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'rlsctl' AND p.proname = 'shadow_seen' AND p.pronargs = 2)
SELECT (SELECT count(*) = 3 FROM bundle_table) AS installed,
       coalesce((SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = 'rlsctl'), false) AS usage,
       -- the history records the reach set (an older rlsctl's did not)
       -- and the policies it found that it did not make
       (SELECT count(*) = 5 FROM pg_attribute WHERE attrelid = (SELECT oid FROM bundle_table WHERE name = 'bundle_history')
                 AND attname IN ('reach', 'registry_checksum', 'registry_digest', 'break_glass_logging', 'existing_policies')
                 AND NOT attisdropped)
       -- and when each table's policy took its form and the md5 of its trees,
       -- and a log that takes to-shadow entries
       AND (SELECT count(*) = 3 FROM pg_attribute WHERE attrelid = (SELECT oid FROM bundle_table WHERE name = 'tenant_tables')
                   AND attname IN ('policy_since', 'installed_using_md5', 'installed_check_md5') AND NOT attisdropped)
       AND EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = (SELECT oid FROM bundle_table WHERE name = 'break_glass_log')
                   AND conname = 'break_glass_log_action_check' AND pg_get_constraintdef(oid) LIKE '%to-shadow%')
           AS records_current,
       coalesce((SELECT has_function_privilege(app.oid, s.oid, 'EXECUTE') FROM shadow s, app), false) AS shadow_executable,
       coalesce((SELECT has_function_privilege(h.oid, 'EXECUTE') FROM helper h), false) AS helper_executable,
       coalesce((SELECT h.prosrc = $3 AND h.prosecdef AND h.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
                        AND h.proowner = (SELECT oid FROM admin) FROM helper h), false) AS helper_current,
       coalesce((SELECT s.prosrc = $4 AND NOT s.prosecdef AND has_function_privilege(app.oid, s.oid, 'EXECUTE')
                 FROM shadow s, app), false) AS shadow_current,
       coalesce((SELECT has_function_privilege(app.oid, h.oid, 'EXECUTE') FROM helper h, app), false)
           AND coalesce((SELECT bool_and(has_table_privilege(app.oid, t.oid, 'SELECT')) AND count(*) = 3
                              AND has_schema_privilege(app.oid, 'rlsctl', 'USAGE') FROM bundle_table t, app GROUP BY app.oid), false) AS app_grants
