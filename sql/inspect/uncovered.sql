-- Tables with the tenant column that are not configured, and whether RLS is on and forced.
-- The configured tables are set aside first, and only the rest looked up in
-- `with_column` (OFFSET 0 keeps it a per-table probe): as a join, the planner
-- looked up the column of every configured table too, and each table twice.
SELECT format('%s.%s', n.nspname, c.relname) AS name, c.relrowsecurity AND c.relforcerowsecurity AS forced
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.oid NOT IN (SELECT oid FROM tenant)
  AND EXISTS (SELECT 1 FROM with_column w WHERE w.oid = c.oid OFFSET 0)
ORDER BY 1
