-- The connected session: who it is, what it may do, and the server.
-- $1: the tenant schema.
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
       ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE b.rolsuper OR b.rolbypassrls ORDER BY 1) AS bypass_roles
FROM pg_roles r WHERE r.rolname = current_user
