-- Every policy in the schema and on children of tenant tables. Deparsing costs
-- a relation open per expression, so with the bundle's registry at hand a
-- policy whose stored tree is unchanged since apply reuses the text apply
-- recorded: {{using}}, {{check}} and {{registry_join}} are filled accordingly.
-- The constant `true` (the break-glass policy) is recognized from its stored
-- tree without deparsing.
SELECT format('%s.%s', n.nspname, c.relname) AS table_name,
       p.polname::text AS name,
       p.polcmd::text AS cmd,
       p.polpermissive AS permissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END FROM unnest(p.polroles) r ORDER BY 1) AS roles,
       EXISTS (SELECT 1 FROM unnest(p.polroles) r, app WHERE r = 0 OR pg_has_role(app.oid, r, 'MEMBER')) AS applies_to_app,
       EXISTS (SELECT 1 FROM unnest(p.polroles) r WHERE r = 0 OR pg_has_role(r, 'USAGE')) AS applies_to_session,
       CASE WHEN p.polqual::text LIKE {{true_tree}} THEN 'true' ELSE {{using}} END AS using_expr,
       CASE WHEN p.polwithcheck::text LIKE {{true_tree}} THEN 'true' ELSE {{check}} END AS check_expr
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace {{registry_join}}
WHERE n.nspname = $1 OR p.polrelid IN (SELECT oid FROM kids)
ORDER BY 1, 2
