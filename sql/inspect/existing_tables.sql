-- Which of the given (schema, table) pairs still exist, in the given order.
-- $1: schemas; $2: tables (same length).
SELECT x.schema_name, x.table_name
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(schema_name, table_name, ord)
WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = x.schema_name AND c.relname = x.table_name AND c.relkind IN ('r', 'p'))
ORDER BY x.ord
