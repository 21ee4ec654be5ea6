-- Every policy in the schema and on children of tenant tables. Deparsing costs
-- a relation open per expression, so with the bundle's registry at hand a
-- policy whose stored tree is unchanged since apply reuses the text apply
-- recorded: apply recorded the md5 of each stored tree (an older rlsctl, the
-- tree itself), and the placeholders below compare with it, or are `false`
-- without the registry. Such a policy comes back with `*_recorded` set and no
-- text, which the caller takes from the registry it reads anyway.
-- The constant `true` (the break-glass policy) is recognized from its stored
-- tree without deparsing. `*_builtin` say an expression's structure is sound:
-- every operator, function and type in it is built in (or the tenant column's
-- type) and every column it reads is the tenant column — the text alone can be
-- made to look right (a quoted "TENANT_ID", a user-defined `=`). A tree the
-- registry recorded when apply made the policy, or the constant `true`, is
-- sound by construction. Each stored tree is decompressed once, in `x0` (`|| ''`
-- makes a plain copy; a cast to text alone passes the compressed datum on), and
-- compared with the registry once, in `x`: at 2,000 tables the comparisons
-- would otherwise decompress and hash it again and again.
SELECT format('%s.%s', n.nspname, c.relname) AS table_name,
       p.polname::text AS name,
       p.polcmd::text AS cmd,
       p.polpermissive AS permissive,
       rs.roles, rs.applies_to_app, rs.applies_to_session,
       CASE WHEN x.using_true THEN 'true' WHEN x.using_recorded THEN NULL
            ELSE pg_get_expr(p.polqual, p.polrelid) END AS using_expr,
       CASE WHEN x.check_true THEN 'true' WHEN x.check_recorded THEN NULL
            ELSE pg_get_expr(p.polwithcheck, p.polrelid) END AS check_expr,
       coalesce(x.using_recorded, false) AS using_recorded,
       coalesce(x.check_recorded, false) AS check_recorded,
       CASE WHEN x.q IS NULL OR x.using_true OR x.using_recorded THEN true ELSE
           NOT EXISTS (SELECT 1 FROM regexp_matches(x.q, ':(opno|opfuncid|funcid|resulttype|consttype) ([0-9]+)', 'g') m
                       WHERE m[2]::bigint >= 16384 AND m[2]::oid IS DISTINCT FROM ta.atttypid)
           AND NOT EXISTS (SELECT 1 FROM regexp_matches(x.q, ':varattno (-?[0-9]+)', 'g') m
                           WHERE m[1]::int IS DISTINCT FROM ta.attnum) END AS using_builtin,
       CASE WHEN x.w IS NULL OR x.check_true OR x.check_recorded THEN true ELSE
           NOT EXISTS (SELECT 1 FROM regexp_matches(x.w, ':(opno|opfuncid|funcid|resulttype|consttype) ([0-9]+)', 'g') m
                       WHERE m[2]::bigint >= 16384 AND m[2]::oid IS DISTINCT FROM ta.atttypid)
           AND NOT EXISTS (SELECT 1 FROM regexp_matches(x.w, ':varattno (-?[0-9]+)', 'g') m
                           WHERE m[1]::int IS DISTINCT FROM ta.attnum) END AS check_builtin
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
-- per distinct role list (a handful), not per policy (OFFSET 0 keeps the planner
-- from folding it back into one evaluation per policy)
JOIN (SELECT s.polroles,
             ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END FROM unnest(s.polroles) r ORDER BY 1) AS roles,
             EXISTS (SELECT 1 FROM unnest(s.polroles) r, app WHERE r = 0 OR pg_has_role(app.oid, r, 'MEMBER')) AS applies_to_app,
             EXISTS (SELECT 1 FROM unnest(s.polroles) r WHERE r = 0 OR pg_has_role(r, 'USAGE')) AS applies_to_session
      FROM (SELECT DISTINCT polroles FROM pg_policy) s OFFSET 0) rs ON rs.polroles = p.polroles
{{registry_join}}
CROSS JOIN LATERAL (
    SELECT x0.q, x0.w, {{using_recorded}} AS using_recorded, {{check_recorded}} AS check_recorded,
           x0.q LIKE {{true_tree}} AS using_true, x0.w LIKE {{true_tree}} AS check_true
    FROM (SELECT p.polqual::text || '' AS q, p.polwithcheck::text || '' AS w{{registry_trees}} OFFSET 0) x0
    OFFSET 0) x
-- the tenant column of the policy's table, for the structure of a tree that is
-- neither recorded nor `true` (the condition on x alone is checked before the
-- lookup: 7 ms at 2,000 tables when every policy looked it up), by
-- (attrelid, attname): as a join the planner scanned all of pg_attribute
LEFT JOIN LATERAL (
    SELECT ta.attnum, ta.atttypid FROM pg_attribute ta
    WHERE NOT ((x.q IS NULL OR x.using_true OR coalesce(x.using_recorded, false))
               AND (x.w IS NULL OR x.check_true OR coalesce(x.check_recorded, false)))
      AND ta.attrelid = p.polrelid AND ta.attname = $2 AND ta.attnum > 0 AND NOT ta.attisdropped
    LIMIT 1) ta ON true
WHERE n.nspname = $1 OR p.polrelid IN (SELECT oid FROM kids) OR p.polrelid IN (SELECT oid FROM with_column)
-- unordered: the caller sorts (by table, then name, bytewise), which at 4,000
-- policies costs the server 2 ms and the client a tenth of that
