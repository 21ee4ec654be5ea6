-- Tables with the tenant column that are not configured, and whether RLS is on and forced.
SELECT format('%s.%s', n.nspname, c.relname) AS name, c.relrowsecurity AND c.relforcerowsecurity AS forced
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid IN (SELECT oid FROM with_column) AND c.oid NOT IN (SELECT oid FROM tenant) ORDER BY 1
