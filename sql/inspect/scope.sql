-- Shared by the reads below: the tenant tables' oids, their inheritance
-- descendants, and the tables in the schema that have the tenant column.
-- $1: schema; $2: tenant column; $3: app role; $4: tenant table oids.
WITH RECURSIVE tenant AS (SELECT unnest($4::oid[]) AS oid),
kids(oid, parent, path) AS (
    SELECT i.inhrelid, i.inhparent, ARRAY[i.inhrelid] FROM pg_inherits i WHERE i.inhparent IN (SELECT oid FROM tenant)
    UNION ALL
    SELECT i.inhrelid, k.parent, k.path || i.inhrelid FROM pg_inherits i JOIN kids k ON i.inhparent = k.oid
    WHERE NOT i.inhrelid = ANY(k.path)),
with_column AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition),
app AS (SELECT oid FROM pg_roles WHERE rolname = $3)
