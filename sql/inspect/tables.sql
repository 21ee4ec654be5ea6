-- Each configured tenant table, in the configured order (a missing one too),
-- then the partitions of configured partitioned tables (at any depth, by name):
-- querying a partition directly skips its parent's policies, and a partition
-- inherits neither the RLS flags nor the policies, so each is a tenant table
-- of its own. Partitions outside the tenant schema are left to BYP006.
-- $1: schema; $2: table names; $3: tenant column; $4: app role; $5: break-glass role;
-- $6: whether to look up the sequences (only apply's plan uses them).
WITH RECURSIVE configured AS (SELECT w.name, w.ord FROM unnest($2::text[]) WITH ORDINALITY AS w(name, ord)),
     schema AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
     parts(oid, root) AS (
         SELECT i.inhrelid, c.relname::text
         FROM configured w JOIN pg_class c ON c.relname = w.name AND c.relnamespace = (SELECT oid FROM schema) AND c.relkind = 'p'
         JOIN pg_inherits i ON i.inhparent = c.oid
         UNION ALL
         SELECT i.inhrelid, p.root FROM parts p JOIN pg_inherits i ON i.inhparent = p.oid),
     wanted AS (
         SELECT w.name, w.ord, NULL::text AS partition_of FROM configured w
         UNION ALL
         SELECT pc.relname::text, (SELECT count(*) FROM configured) + row_number() OVER (ORDER BY pc.relname), parts.root
         FROM parts JOIN pg_class pc ON pc.oid = parts.oid
         WHERE pc.relispartition AND pc.relnamespace = (SELECT oid FROM schema) AND NOT pc.relname = ANY($2::text[])),
     roles AS (SELECT (SELECT oid FROM pg_roles WHERE rolname = $4) AS app,
                      (SELECT oid FROM pg_roles WHERE rolname = $5) AS admin)
SELECT w.name,
       w.partition_of,
       coalesce(c.relkind = 'p', false) AS partitioned,
       c.oid IS NOT NULL AS exists,
       -- what else of that name is there when it is no table (a view, ...)
       CASE WHEN c.oid IS NULL THEN
           (SELECT CASE o.relkind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'
                                  WHEN 'f' THEN 'a foreign table' WHEN 'S' THEN 'a sequence'
                                  WHEN 'c' THEN 'a composite type' WHEN 'i' THEN 'an index'
                                  WHEN 'I' THEN 'an index' ELSE 'not a table' END
            FROM pg_class o WHERE o.relnamespace = (SELECT oid FROM schema) AND o.relname = w.name)
       END AS other_kind,
       a.attnum IS NOT NULL AS has_column,
       format_type(a.atttypid, NULL) AS column_type,
       pg_get_userbyid(c.relowner)::text AS owner,
       -- the session has the owner's privileges (ALTER TABLE, CREATE POLICY; bypass without FORCE)
       coalesce(pg_has_role(c.relowner, 'USAGE'), false) AS session_owns,
       -- the app role can become the owner (SET ROLE), inherited or not
       coalesce((SELECT pg_has_role(roles.app, c.relowner, 'MEMBER') FROM roles), false) AS app_owns,
       coalesce(c.relrowsecurity, false) AS rls,
       coalesce(c.relforcerowsecurity, false) AS force,
       -- a btree index led by the tenant column; its access method through its
       -- first column's operator class (a handful of rows), not the index's
       -- pg_class row: the planner hashes every index once, and that way
       -- without a pass over pg_class
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_opclass oc ON oc.oid = i.indclass[0] JOIN pg_am am ON am.oid = oc.opcmethod
               WHERE i.indrelid = c.oid AND am.amname = 'btree' AND i.indkey[0] = a.attnum) AS has_tenant_index,
       coalesce(acl.public, '{}') AS public_privileges,
       coalesce(acl.app, '{}') AS app_privileges,
       coalesce(acl.admin, '{}') AS admin_privileges,
       -- directly, through membership or PUBLIC; REFERENCES on some columns counts
       -- too (foreign-key checks ignore RLS, so it probes other tenants' keys).
       -- Only a column with an ACL of its own can grant more than the table:
       -- has_any_column_privilege looks up every column through the catalog
       -- cache, a quarter of this read at 2,000 tables, so it is asked only then.
       CASE WHEN (SELECT has_table_privilege(roles.app, c.oid, 'TRUNCATE, REFERENCES, TRIGGER')
                         OR (a.column_acl AND has_any_column_privilege(roles.app, c.oid, 'REFERENCES')) FROM roles)
            THEN ARRAY(SELECT p FROM unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) p, roles WHERE has_table_privilege(roles.app, c.oid, p))
                 || ARRAY(SELECT 'REFERENCES (columns ' || string_agg(a2.attname::text, ', ' ORDER BY a2.attnum) || ')'
                          FROM pg_attribute a2, roles
                          WHERE a2.attrelid = c.oid AND a2.attnum > 0 AND NOT a2.attisdropped
                            AND NOT has_table_privilege(roles.app, c.oid, 'REFERENCES')
                            AND has_column_privilege(roles.app, c.oid, a2.attnum, 'REFERENCES')
                          HAVING count(*) > 0)
            ELSE '{}' END AS app_forbidden_privileges,
       coalesce(sq.schemas, '{}') AS sequence_schemas,
       coalesce(sq.names, '{}') AS sequence_names,
       coalesce(sq.app_usage, '{}') AS sequence_app_usage,
       coalesce(has_table_privilege(c.oid, 'SELECT'), false) AS session_can_select
FROM wanted w
LEFT JOIN pg_class c ON c.relnamespace = (SELECT oid FROM schema) AND c.relname = w.name AND c.relkind IN ('r', 'p')
-- the tenant column, and whether any column has an ACL of its own: one pass
-- over the table's columns by attrelid (two lookups, by name and for an ACL,
-- cost 2.4 ms more at 2,000 tables). An aggregate, so the planner keeps it a
-- per-table lookup (as a join, before ANALYZE, it scanned every table's column
-- of that name once and rescanned the result per table).
LEFT JOIN LATERAL (
    SELECT max(a.attnum) FILTER (WHERE a.attname = $3) AS attnum,
           max(a.atttypid) FILTER (WHERE a.attname = $3) AS atttypid,
           bool_or(a.attacl IS NOT NULL) AS column_acl
    FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) a ON true
-- the sequences owned by the table's columns, looked up per table through
-- pg_depend's index on the referenced object: a handful of rows each. (As a
-- CTE joined by oid, the planner put the aggregate over every table, or a scan
-- of it, on the inner side of a nested loop at a few hundred tables: quadratic.)
-- Gated by $6 in the join, not inside: there the three ordered aggregates
-- still ran once per table over no rows (3 ms at 2,000 tables).
LEFT JOIN LATERAL (
    SELECT array_agg(sn.nspname::text ORDER BY s.oid) AS schemas,
           array_agg(s.relname::text ORDER BY s.oid) AS names,
           array_agg(coalesce(has_sequence_privilege((SELECT app FROM roles), s.oid, 'USAGE'), false) ORDER BY s.oid) AS app_usage
    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_namespace sn ON sn.oid = s.relnamespace
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
      AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) sq ON $6::boolean
-- the ACL exploded once per table, for PUBLIC, the app role and the break-glass role
LEFT JOIN LATERAL (
    SELECT array_agg(x.privilege_type::text ORDER BY x.privilege_type::text) FILTER (WHERE x.grantee = 0) AS public,
           array_agg(x.privilege_type::text ORDER BY x.privilege_type::text) FILTER (WHERE x.grantee = roles.app) AS app,
           array_agg(x.privilege_type::text ORDER BY x.privilege_type::text) FILTER (WHERE x.grantee = roles.admin) AS admin
    FROM aclexplode(c.relacl) x, roles) acl ON true
ORDER BY w.ord
