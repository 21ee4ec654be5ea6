-- Each configured tenant table, in the configured order (a missing one too).
-- $1: schema; $2: table names; $3: tenant column; $4: app role; $5: break-glass role.
WITH wanted AS (SELECT w.name, w.ord FROM unnest($2::text[]) WITH ORDINALITY AS w(name, ord)),
     roles AS (SELECT (SELECT oid FROM pg_roles WHERE rolname = $4) AS app,
                      (SELECT oid FROM pg_roles WHERE rolname = $5) AS admin),
     sequences AS (
         SELECT d.refobjid AS table_oid, sn.nspname::text AS schema, s.relname::text AS name, s.oid
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         JOIN pg_namespace sn ON sn.oid = s.relnamespace
         WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
SELECT w.name,
       c.oid IS NOT NULL AS exists,
       c.oid AS oid,
       a.attnum IS NOT NULL AS has_column,
       format_type(a.atttypid, NULL) AS column_type,
       pg_get_userbyid(c.relowner)::text AS owner,
       -- the session has the owner's privileges (ALTER TABLE, CREATE POLICY; bypass without FORCE)
       coalesce(pg_has_role(c.relowner, 'USAGE'), false) AS session_owns,
       -- the app role can become the owner (SET ROLE), inherited or not
       coalesce((SELECT pg_has_role(roles.app, c.relowner, 'MEMBER') FROM roles), false) AS app_owns,
       coalesce(c.relrowsecurity, false) AS rls,
       coalesce(c.relforcerowsecurity, false) AS force,
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               WHERE i.indrelid = c.oid AND am.amname = 'btree' AND i.indkey[0] = a.attnum) AS has_tenant_index,
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x WHERE x.grantee = 0 ORDER BY 1) AS public_privileges,
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x, roles WHERE x.grantee = roles.app ORDER BY 1) AS app_privileges,
       ARRAY(SELECT x.privilege_type::text FROM aclexplode(c.relacl) x, roles WHERE x.grantee = roles.admin ORDER BY 1) AS admin_privileges,
       -- directly, through membership or PUBLIC
       CASE WHEN (SELECT has_table_privilege(roles.app, c.oid, 'TRUNCATE, REFERENCES, TRIGGER') FROM roles)
            THEN ARRAY(SELECT p FROM unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) p, roles WHERE has_table_privilege(roles.app, c.oid, p))
            ELSE '{}' END AS app_forbidden_privileges,
       ARRAY(SELECT s.schema FROM sequences s WHERE s.table_oid = c.oid ORDER BY s.oid) AS sequence_schemas,
       ARRAY(SELECT s.name FROM sequences s WHERE s.table_oid = c.oid ORDER BY s.oid) AS sequence_names,
       ARRAY(SELECT coalesce(has_sequence_privilege(roles.app, s.oid, 'USAGE'), false) FROM sequences s, roles
             WHERE s.table_oid = c.oid ORDER BY s.oid) AS sequence_app_usage,
       -- the session sees every row: RLS off, it bypasses RLS, or a policy USING (true)
       -- applies to it and nothing restrictive narrows it (then its counts are real)
       coalesce(has_table_privilege(c.oid, 'SELECT') AND (
                NOT c.relrowsecurity
                OR (pg_has_role(c.relowner, 'USAGE') AND NOT c.relforcerowsecurity)
                OR (SELECT me.rolsuper OR me.rolbypassrls FROM pg_roles me WHERE me.rolname = current_user)
                OR (EXISTS (SELECT 1 FROM pg_policy op, unnest(op.polroles) r
                            WHERE op.polrelid = c.oid AND op.polpermissive AND op.polcmd IN ('*', 'r')
                              AND (r = 0 OR pg_has_role(r, 'USAGE')) AND pg_get_expr(op.polqual, op.polrelid) = 'true')
                    AND NOT EXISTS (SELECT 1 FROM pg_policy rp, unnest(rp.polroles) r
                                    WHERE rp.polrelid = c.oid AND NOT rp.polpermissive AND rp.polcmd IN ('*', 'r')
                                      AND (r = 0 OR pg_has_role(r, 'USAGE'))))), false) AS session_sees_all
FROM wanted w
LEFT JOIN pg_namespace n ON n.nspname = $1
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY w.ord
