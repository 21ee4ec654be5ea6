-- LOGIN roles other than the bundle's and the session's that can SELECT a
-- tenant table now and have no way past RLS (superuser, BYPASSRLS, the
-- break-glass role's privileges): after FORCE they read nothing.
-- $1: schema; $2: table names; $3: app role; $4: break-glass role.
WITH tenant AS (SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p')),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $4)
SELECT r.rolname::text AS role,
       ARRAY(SELECT t.relname::text FROM tenant t WHERE has_table_privilege(r.oid, t.oid, 'SELECT') ORDER BY 1) AS tables
FROM pg_roles r
WHERE r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolbypassrls AND r.rolname NOT IN ($3, $4) AND r.rolname <> current_user
  AND NOT coalesce((SELECT pg_has_role(r.oid, admin.oid, 'USAGE') FROM admin), false)
  AND EXISTS (SELECT 1 FROM tenant t WHERE has_table_privilege(r.oid, t.oid, 'SELECT'))
ORDER BY 1
