-- Shared by the reads below: the tenant tables' oids, their inheritance
-- descendants, and the tables that have the tenant column: every one in the
-- tenant schema, and in any other schema those the app role can read.
-- $1: schema; $2: tenant column; $3: app role; $4: tenant table oids.
WITH RECURSIVE tenant AS (SELECT unnest($4::oid[]) AS oid),
kids(oid, parent, path) AS (
    SELECT i.inhrelid, i.inhparent, ARRAY[i.inhrelid] FROM pg_inherits i WHERE i.inhparent IN (SELECT oid FROM tenant)
    UNION ALL
    SELECT i.inhrelid, k.parent, k.path || i.inhrelid FROM pg_inherits i JOIN kids k ON i.inhparent = k.oid
    WHERE NOT i.inhrelid = ANY(k.path)),
app AS (SELECT oid FROM pg_roles WHERE rolname = $3),
with_column AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'rlsctl')
      AND (n.nspname = $1
           OR coalesce((SELECT has_schema_privilege(app.oid, n.oid, 'USAGE')
                               AND has_table_privilege(app.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE') FROM app), false)))
