-- The connected session: who it is, what it may do, and the server; how it
-- could log the break-glass role's statements (pgaudit per role, the way RDS
-- documents it, or log_statement), and the break-glass role's sessions open now.
-- $1: the tenant schema; $2: the break-glass role.
-- The can_set placeholders become whether the session may set that parameter
-- per role (has_parameter_privilege exists on PostgreSQL 15 and later only).
SELECT current_user::text AS user_name,
       current_database()::text AS database,
       session_user::text AS session_user_name,
       r.rolsuper AS superuser,
       r.rolcreaterole AS createrole,
       r.rolcreatedb AS createdb,
       r.rolreplication AS replication,
       r.rolbypassrls AS bypassrls,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       coalesce((SELECT pg_has_role(n.nspowner, 'USAGE') OR has_schema_privilege(n.oid, 'USAGE WITH GRANT OPTION')
                 FROM pg_namespace n WHERE n.nspname = $1), false) AS can_grant_schema_usage,
       coalesce(has_schema_privilege('public', (SELECT oid FROM pg_namespace WHERE nspname = $1), 'USAGE'), false)
           AS public_schema_usage,
       has_database_privilege('public', current_database(), 'CONNECT') AS public_connect,
       current_setting('server_version_num')::int AS server_version_num,
       ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE b.rolsuper OR b.rolbypassrls ORDER BY 1) AS bypass_roles,
       EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pgaudit.log') AS pgaudit_loaded,
       CASE WHEN EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pgaudit.log')
            THEN r.rolsuper OR {{can_set:pgaudit.log}}
                 -- RDS lets rds_superuser set pgaudit.log per role on every major
                 OR coalesce((SELECT pg_has_role(g.oid, 'MEMBER') FROM pg_roles g WHERE g.rolname = 'rds_superuser'), false)
            ELSE false END AS can_set_pgaudit,
       r.rolsuper OR {{can_set:log_statement}} AS can_set_log_statement,
       -- RDS's role for IAM database authentication, and whether the session may grant it
       coalesce((SELECT r.rolsuper OR pg_has_role(g.oid, 'MEMBER WITH ADMIN OPTION')
                        OR (r.rolcreaterole AND current_setting('server_version_num')::int < 160000)
                 FROM pg_roles g WHERE g.rolname = 'rds_iam'), false) AS can_grant_rds_iam,
       EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_iam') AS rds_iam_exists,
       ARRAY(SELECT format('pid %s', a.pid) FROM pg_stat_activity a
             -- (of another role's session only the pid and the user are visible)
             WHERE a.usename = $2 AND a.pid <> pg_backend_pid()
             ORDER BY a.pid) AS break_glass_sessions,
       -- CVE-2024-4317's fix: the extended statistics views filter by owner
       coalesce((SELECT bool_and(pg_get_viewdef(v.oid) LIKE '%pg_has_role(c.relowner%')
                 FROM pg_class v
                 WHERE v.relnamespace = 'pg_catalog'::regnamespace
                   AND v.relname IN ('pg_stats_ext', 'pg_stats_ext_exprs')), true) AS stats_ext_private
FROM pg_roles r WHERE r.rolname = current_user
