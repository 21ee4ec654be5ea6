-- Shared by the reads below: the configured tenant tables, their inheritance
-- descendants (partitions at any depth), and the tables that have the tenant
-- column: every one in the tenant schema, and in any other schema those the
-- app role can read. Looked up by name, so these reads need no other first.
-- $1: schema; $2: tenant column; $3: app role; $4: tenant table names.
-- The tenant tables are matched to the names as a join, not `= ANY`: that
-- lets the planner hash the names against one pass over pg_class when there
-- are many (2,000 lookups in the name index cost twice as much), and still
-- look a handful up in the index.
WITH RECURSIVE tenant AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN (SELECT DISTINCT unnest($4::text[]) AS name) w ON w.name = c.relname
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')),
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
