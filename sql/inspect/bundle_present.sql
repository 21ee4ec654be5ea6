-- Whether the bundle's schema is there, readable, and as apply makes it.
-- $1: app role; $2: break-glass role; $3: the helper's body as the bundle writes it;
-- $4: the shadow function's body as the bundle writes it for the tenant setting.
WITH app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $2),
     helper AS (SELECT p.* FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'rlsctl' AND p.proname = 'null_tenant_counts' AND p.pronargs = 0),
     shadow AS (SELECT p.* FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'rlsctl' AND p.proname = 'shadow_seen' AND p.pronargs = 2)
SELECT to_regclass('rlsctl.tenant_tables') IS NOT NULL AND to_regclass('rlsctl.bundle_history') IS NOT NULL
           AND to_regclass('rlsctl.break_glass_log') IS NOT NULL AS installed,
       coalesce((SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = 'rlsctl'), false) AS usage,
       -- the history records the reach set (an older rlsctl's did not)
       (SELECT count(*) = 3 FROM pg_attribute WHERE attrelid = to_regclass('rlsctl.bundle_history')
                 AND attname IN ('reach', 'registry_checksum', 'break_glass_logging') AND NOT attisdropped) AS records_current,
       coalesce((SELECT has_function_privilege(app.oid, s.oid, 'EXECUTE') FROM shadow s, app), false) AS shadow_executable,
       coalesce((SELECT has_function_privilege(h.oid, 'EXECUTE') FROM helper h), false) AS helper_executable,
       coalesce((SELECT h.prosrc = $3 AND h.prosecdef AND h.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
                        AND h.proowner = (SELECT oid FROM admin) FROM helper h), false) AS helper_current,
       coalesce((SELECT s.prosrc = $4 AND NOT s.prosecdef AND has_function_privilege(app.oid, s.oid, 'EXECUTE')
                 FROM shadow s, app), false) AS shadow_current,
       coalesce((SELECT has_function_privilege(app.oid, h.oid, 'EXECUTE') FROM helper h, app), false)
           AND coalesce((SELECT has_table_privilege(app.oid, to_regclass('rlsctl.break_glass_log'), 'SELECT')
                         AND has_table_privilege(app.oid, to_regclass('rlsctl.tenant_tables'), 'SELECT')
                         AND has_table_privilege(app.oid, to_regclass('rlsctl.bundle_history'), 'SELECT')
                         AND has_schema_privilege(app.oid, 'rlsctl', 'USAGE') FROM app), false) AS app_grants
