-- Views (through views), materialized views and foreign tables over tenant
-- tables or with the tenant column, and whether the app role can read them.
, deps(view_oid, base_oid, path) AS (
    SELECT r.ev_class, d.refobjid, ARRAY[r.ev_class]
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN (SELECT oid FROM tenant UNION SELECT oid FROM kids) AND r.ev_class <> d.refobjid
    UNION ALL
    SELECT r.ev_class, deps.base_oid, deps.path || r.ev_class
    FROM deps JOIN pg_depend d ON d.refobjid = deps.view_oid AND d.classid = 'pg_rewrite'::regclass
              AND d.refclassid = 'pg_class'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> deps.view_oid AND NOT r.ev_class = ANY(deps.path)),
readers AS (
    SELECT view_oid AS oid, array_agg(DISTINCT base_oid) AS bases FROM deps GROUP BY 1
    UNION ALL
    SELECT c.oid, '{}'::oid[] FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
    WHERE c.relkind = 'f')
SELECT format('%s.%s', n.nspname, v.relname) AS name,
       v.relkind::text AS relkind,
       o.rolname::text AS owner,
       o.rolsuper OR o.rolbypassrls OR EXISTS (SELECT 1 FROM pg_class b WHERE b.oid = ANY(x.bases)
                                                AND pg_has_role(v.relowner, b.relowner, 'MEMBER') AND NOT b.relforcerowsecurity) AS owner_bypasses,
       coalesce((SELECT lower(option_value) IN ('true', 'on', '1', 'yes') FROM pg_options_to_table(v.reloptions)
                 WHERE option_name = 'security_invoker'), false) AS security_invoker,
       ARRAY(SELECT format('%s.%s', bn.nspname, b.relname) FROM pg_class b JOIN pg_namespace bn ON bn.oid = b.relnamespace
             WHERE b.oid = ANY(x.bases) ORDER BY 1) AS reads,
       v.relname::text AS bare_name,
       coalesce((SELECT has_table_privilege(app.oid, v.oid, 'SELECT') FROM app), false) AS app_can_select
FROM readers x JOIN pg_class v ON v.oid = x.oid JOIN pg_namespace n ON n.oid = v.relnamespace JOIN pg_roles o ON o.oid = v.relowner
ORDER BY 1
