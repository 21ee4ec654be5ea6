-- Views (through views), materialized views and foreign tables over tenant
-- tables or with the tenant column, and whether the app role can read them;
-- and the rules (other than a view's own) whose actions read tenant tables,
-- which run with the rights of their table's owner when the app role fires
-- them. `rule` is NULL on a relation's row.
, deps(rule_oid, view_oid, is_view, base_oid, path) AS (
    SELECT r.oid, r.ev_class, r.rulename = '_RETURN', d.refobjid, ARRAY[r.ev_class]
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid IN (SELECT oid FROM tenant UNION SELECT oid FROM kids) AND r.ev_class <> d.refobjid
    UNION ALL
    -- only a view reads on: a rule on a table reads into its action, not its table
    SELECT r.oid, r.ev_class, r.rulename = '_RETURN', deps.base_oid, deps.path || r.ev_class
    FROM deps JOIN pg_depend d ON d.refobjid = deps.view_oid AND d.classid = 'pg_rewrite'::regclass
              AND d.refclassid = 'pg_class'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE deps.is_view AND r.ev_class <> deps.view_oid AND NOT r.ev_class = ANY(deps.path)),
readers(oid, bases, rule_oid) AS (
    SELECT view_oid, array_agg(DISTINCT base_oid), NULL::oid FROM deps WHERE is_view GROUP BY 1
    UNION ALL
    SELECT c.oid, '{}'::oid[], NULL FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
    WHERE c.relkind = 'f'
    UNION ALL
    SELECT view_oid, array_agg(DISTINCT base_oid), rule_oid FROM deps WHERE NOT is_view GROUP BY 1, 3)
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
       coalesce((SELECT has_table_privilege(app.oid, v.oid, 'SELECT') FROM app), false) AS app_can_select,
       -- what a review of the object reads: a view's query, a rule's action
       md5(coalesce(CASE WHEN x.rule_oid IS NOT NULL THEN pg_get_ruledef(x.rule_oid)
                         WHEN v.relkind IN ('v', 'm') THEN pg_get_viewdef(v.oid) END, '')) AS definition_md5,
       rw.rulename::text AS rule,
       CASE rw.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT' WHEN '4' THEN 'DELETE' END AS event,
       -- the app role fires the rule: it may run the rule's statement on its table
       coalesce(rw.ev_enabled <> 'D' AND (SELECT has_table_privilege(app.oid, v.oid,
                    CASE rw.ev_type WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT' WHEN '4' THEN 'DELETE' ELSE 'SELECT' END)
                FROM app), false) AS app_fires
FROM readers x JOIN pg_class v ON v.oid = x.oid JOIN pg_namespace n ON n.oid = v.relnamespace JOIN pg_roles o ON o.oid = v.relowner
LEFT JOIN pg_rewrite rw ON rw.oid = x.rule_oid
-- a relation's row is a view, a materialized view or a foreign table; a rule's, on any relation
WHERE x.rule_oid IS NOT NULL OR v.relkind IN ('v', 'm', 'f')
ORDER BY 1, rule NULLS FIRST
