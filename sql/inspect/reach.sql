-- Who reaches every row of a tenant table, and how: one row per role, with the
-- shortest membership path to the role that reaches rows itself. A role
-- reaches rows itself when it is a superuser, has BYPASSRLS, owns the table
-- (an owner can turn RLS or FORCE off), or is named by a permissive policy
-- whose USING is always true (the break-glass policy, any USING (true));
-- PUBLIC in such a policy means everyone. Every role that can become one of
-- these reaches the rows too: membership at any depth, INHERIT or only SET or
-- only ADMIN OPTION (it can grant itself the rest), and on PostgreSQL 15 and
-- older CREATEROLE, which can grant itself any role that is not a superuser.
-- $1: schema; $2: tenant tables; $3: the stored tree of the constant true, as
-- a LIKE pattern (see inspect/read.rs).
-- The tenant tables are matched to the names as a join, as in scope.sql: the
-- planner hashes many against one pass over pg_class, looks few up by index.
WITH RECURSIVE tenant AS (
    SELECT c.oid, c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN (SELECT DISTINCT unnest($2::text[]) AS name) w ON w.name = c.relname
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')),
all_tables AS (SELECT count(*) AS n FROM tenant),
-- the roles that reach rows themselves: what way (`kind`, see Reacher), why
-- in words, on which tables (NULL: all), and the always-true policy's name
direct(role, kind, reason, tables, policy) AS (
    SELECT r.oid, 'superuser', 'superuser', NULL::oid[], NULL::text FROM pg_roles r WHERE r.rolsuper
    UNION ALL
    SELECT r.oid, 'bypassrls', 'BYPASSRLS', NULL, NULL FROM pg_roles r WHERE r.rolbypassrls AND NOT r.rolsuper
    UNION ALL
    -- a replication connection reads below row security: a base backup
    -- copies every row, logical decoding streams every change
    SELECT r.oid, 'replication', 'REPLICATION (a base backup or logical decoding reads every row)', NULL, NULL
    FROM pg_roles r WHERE r.rolreplication AND NOT r.rolsuper AND NOT r.rolbypassrls
    UNION ALL
    -- the predefined roles that reach the server's files or programs, which
    -- hold every row (PostgreSQL documents them as superuser-equivalent), and
    -- RDS's role for logical replication
    SELECT r.oid, 'server', CASE r.rolname
                      WHEN 'pg_read_server_files' THEN 'pg_read_server_files (it reads the data files)'
                      WHEN 'pg_write_server_files' THEN 'pg_write_server_files (it writes the server''s files)'
                      WHEN 'pg_execute_server_program' THEN 'pg_execute_server_program (it runs programs as the server)'
                      ELSE 'rds_replication (logical decoding reads every change)' END, NULL, NULL
    FROM pg_roles r
    WHERE r.rolname IN ('pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program', 'rds_replication')
    UNION ALL
    SELECT t.relowner, 'owner', 'owns the table (it can turn RLS off)', array_agg(t.oid), NULL FROM tenant t GROUP BY t.relowner
    UNION ALL
    SELECT pr.role, 'policy', format('policy %s is USING (true)', min(p.polname::text)), array_agg(DISTINCT p.polrelid),
           min(p.polname::text)
    -- the tenant tables' policies by an index lookup per table: as a join to
    -- the CTE, the planner rescanned the tables once per policy, and matching
    -- the names again cost 3 ms at 2,000 tables
    FROM pg_policy p, unnest(p.polroles) AS pr(role)
    WHERE p.polrelid = ANY (ARRAY(SELECT oid FROM tenant))
      AND p.polpermissive AND p.polcmd IN ('*', 'r')
      -- a tree that matches is one short CONST node: a larger stored value
      -- (pg_column_size reads only its header) is not decompressed to be sure
      AND CASE WHEN pg_column_size(p.polqual) > 512 THEN false ELSE p.polqual::text LIKE $3 END
    GROUP BY pr.role),
base(role, kind, reason, tables, indirect, policy) AS (
    SELECT d.role, d.kind, d.reason, d.tables, false, d.policy FROM direct d
    UNION ALL
    -- PostgreSQL 15 and older: CREATEROLE can grant itself any non-superuser role
    SELECT r.oid, 'createrole', 'CREATEROLE: on PostgreSQL 15 and older it can grant itself ' || g.names,
           CASE WHEN g.every THEN NULL ELSE g.tables END, true, NULL
    FROM pg_roles r,
         LATERAL (SELECT string_agg(DISTINCT o.rolname::text, ', ') AS names, bool_or(d.tables IS NULL) AS every,
                         ARRAY(SELECT DISTINCT x FROM direct d2 JOIN pg_roles o2 ON o2.oid = d2.role, unnest(d2.tables) x
                               WHERE NOT o2.rolsuper AND o2.oid <> r.oid) AS tables
                  FROM direct d JOIN pg_roles o ON o.oid = d.role
                  WHERE NOT o.rolsuper AND o.oid <> r.oid) g
    WHERE r.rolcreaterole AND NOT r.rolsuper AND g.names IS NOT NULL
      AND current_setting('server_version_num')::int < 160000),
-- from each such role down to its members, at any depth
chain(role, base, path) AS (
    SELECT DISTINCT b.role, b.role, ARRAY[b.role] FROM base b WHERE b.role <> 0
    UNION ALL
    SELECT m.member, c.base, m.member || c.path
    FROM chain c JOIN pg_auth_members m ON m.roleid = c.role
    WHERE NOT m.member = ANY(c.path)),
reached AS (
    SELECT c.role, c.path, b.kind, b.reason, b.tables, b.indirect, b.policy,
           CASE WHEN b.tables IS NULL THEN (SELECT n FROM all_tables) ELSE cardinality(b.tables) END AS n
    FROM chain c JOIN base b ON b.role = c.base)
SELECT x.role, x.login, x.kind, x.reason, x.tables, x.all_tables, x.path, x.reads_as_itself, x.policy FROM (
    SELECT DISTINCT ON (r.rolname) r.rolname::text AS role, r.rolcanlogin AS login, rc.kind, rc.reason, rc.policy,
           -- what runs with this role's rights (a view, a SECURITY DEFINER
           -- function) reads past the policies without changing anything first
           r.rolsuper OR r.rolbypassrls
               OR EXISTS (SELECT 1 FROM direct d WHERE d.kind = 'policy' AND (d.role = 0 OR pg_has_role(r.oid, d.role, 'USAGE')))
               AS reads_as_itself,
           rc.n AS tables, rc.n = (SELECT n FROM all_tables) AS all_tables,
           ARRAY(SELECT pg_get_userbyid(p.oid)::text FROM unnest(rc.path) WITH ORDINALITY AS p(oid, i) ORDER BY p.i) AS path
    FROM reached rc JOIN pg_roles r ON r.oid = rc.role
    -- most tables first, then what the role is (a superuser before an owner),
    -- then the shortest path
    ORDER BY r.rolname, rc.n DESC, rc.kind <> 'superuser', cardinality(rc.path), rc.indirect) x
UNION ALL
SELECT 'PUBLIC', true, b.kind, b.reason, cardinality(b.tables), cardinality(b.tables) = (SELECT n FROM all_tables), ARRAY['PUBLIC'], true, b.policy
FROM base b WHERE b.role = 0
ORDER BY 1
