-- The bundle's roles as they are, and what the session may do to them.
-- $1: role names; $2: the tenant schema.
SELECT r.rolname::text AS name,
       r.rolcanlogin AS login,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       r.rolcreatedb AS createdb,
       r.rolcreaterole AS createrole,
       r.rolreplication AS replication,
       coalesce(has_schema_privilege(r.oid, (SELECT oid FROM pg_namespace WHERE nspname = $2), 'USAGE'), false) AS schema_usage,
       has_database_privilege(r.oid, (SELECT oid FROM pg_database WHERE datname = current_database()), 'CONNECT') AS connect,
       -- on PostgreSQL 16+ what CREATEROLE needs to alter, grant or drop a role
       pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION') AS session_is_admin,
       pg_has_role(r.oid, 'USAGE') AS session_inherits,
       -- RDS IAM database authentication: a direct member of rds_iam logs in with a token only
       EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
               WHERE g.rolname = 'rds_iam' AND m.member = r.oid) AS iam,
       -- settings for every database (ALTER ROLE ... SET), e.g. the break-glass role's statement logging
       coalesce((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}')::text[]
           AS settings
FROM pg_roles r WHERE r.rolname = ANY($1::text[])
