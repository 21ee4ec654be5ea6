-- The rlsctl schema as it is: its owner, and everything in it or on it that
-- the bundle did not make or that its owner did not make — a table, function
-- or type planted by another role, a trigger, rule or policy (code that would
-- run as whoever applies), RLS on its tables, CREATE granted on it; and every
-- role that can log in and write the bundle's records (INSERT, UPDATE, DELETE
-- or TRUNCATE on them, directly, inherited or through PUBLIC; becoming their
-- owner; CREATE in the schema) with its name, for BYP007 to set the roles that
-- apply apart. Nothing when the schema does not exist.
-- $1: the break-glass role (owns the helper).
-- The schema's relations are collected once (pg_class has no index on the
-- namespace: one scan, not one per part below); the triggers, rules and
-- policies on them are then found through their tables' indexes.
WITH s AS (SELECT oid, nspowner, nspacl FROM pg_namespace WHERE nspname = 'rlsctl'),
     rel AS MATERIALIZED (SELECT c.oid, c.relname, c.relkind, c.relowner, c.relrowsecurity
                          FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM s)),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     made(name) AS (VALUES ('bundle_history'), ('bundle_history_id_seq'), ('bundle_history_pkey'),
                           ('tenant_tables'), ('tenant_tables_pkey'),
                           ('break_glass_log'), ('break_glass_log_id_seq'), ('break_glass_log_pkey'))
SELECT 'owner' AS kind, pg_get_userbyid(s.nspowner)::text AS detail,
       coalesce((SELECT rolsuper FROM pg_roles WHERE oid = s.nspowner), false) AS owner_is_superuser,
       NULL::text AS role
FROM s
UNION ALL
SELECT 'foreign', format('%s rlsctl.%s owned by %s',
                         CASE c.relkind WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index'
                                        WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'relation' END,
                         quote_ident(c.relname), pg_get_userbyid(c.relowner)), false, NULL
FROM rel c, s
WHERE c.relowner <> s.nspowner OR c.relname NOT IN (SELECT name FROM made)
UNION ALL
SELECT 'foreign', format('function %s owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)), false, NULL
FROM pg_proc p, s
WHERE p.pronamespace = s.oid
  AND NOT (p.proname = 'null_tenant_counts' AND p.pronargs = 0
           AND (p.proowner = s.nspowner OR p.proowner IN (SELECT oid FROM admin)))
  AND NOT (p.proname = 'shadow_seen' AND p.oid::regprocedure::text = 'rlsctl.shadow_seen(text,text)'
           AND p.proowner = s.nspowner AND NOT p.prosecdef)
UNION ALL
SELECT 'foreign', format('type %s owned by %s', t.oid::regtype, pg_get_userbyid(t.typowner)), false, NULL
FROM pg_type t, s
WHERE t.typnamespace = s.oid AND t.typrelid = 0
  AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typrelid <> 0)
UNION ALL
SELECT 'foreign', format('trigger %s on rlsctl.%s', quote_ident(t.tgname), quote_ident(c.relname)), false, NULL
FROM rel c JOIN pg_trigger t ON t.tgrelid = c.oid
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'foreign', format('rule %s on rlsctl.%s', quote_ident(r.rulename), quote_ident(c.relname)), false, NULL
FROM rel c JOIN pg_rewrite r ON r.ev_class = c.oid
WHERE c.relkind = 'r'
UNION ALL
SELECT 'foreign', format('policy %s on rlsctl.%s', quote_ident(p.polname), quote_ident(c.relname)), false, NULL
FROM rel c JOIN pg_policy p ON p.polrelid = c.oid
UNION ALL
SELECT 'foreign', format('row level security on rlsctl.%s', quote_ident(c.relname)), false, NULL
FROM rel c
WHERE c.relrowsecurity
UNION ALL
SELECT 'foreign', format('CREATE on schema rlsctl granted to %s',
                         CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee)::text END), false, NULL
FROM s, aclexplode(s.nspacl) x
WHERE x.privilege_type = 'CREATE' AND x.grantee <> s.nspowner
UNION ALL
SELECT 'writer', format('%s can %s rlsctl.%s', r.rolname,
                        coalesce(w.privileges, 'become the owner of'), quote_ident(c.relname)), false, r.rolname::text
FROM pg_roles r CROSS JOIN rel c
CROSS JOIN LATERAL (SELECT string_agg(p, ', ' ORDER BY p) AS privileges
                    FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
                    WHERE has_table_privilege(r.oid, c.oid, p)) w
WHERE c.relname IN ('bundle_history', 'tenant_tables', 'break_glass_log') AND c.relkind = 'r'
  AND r.rolcanlogin AND NOT r.rolsuper
  AND (w.privileges IS NOT NULL OR pg_has_role(r.oid, c.relowner, 'MEMBER'))
UNION ALL
SELECT 'writer', format('%s can create objects in schema rlsctl', r.rolname), false, r.rolname::text
FROM pg_roles r, s
WHERE r.rolcanlogin AND NOT r.rolsuper AND has_schema_privilege(r.oid, s.oid, 'CREATE')
