-- What the app role reaches: roles with CREATEROLE among the app role and the
-- roles it is a member of (transitively, INHERIT or not: a member can SET
-- ROLE; whether it reaches every row is the reach set's answer), defaults of
-- the tenant setting that give it a tenant before it sets one (setting names
-- are case-insensitive), and default privileges that will hand it TRUNCATE,
-- REFERENCES or TRIGGER (or PUBLIC SELECT, or it SELECT) on future tables.
-- And, for an app role apply is yet to create, the other tables and views of
-- the tenant schema it will not be able to read (apply grants it the tenant
-- tables only; PUBLIC's grants it gets).
-- $1: the app role; $2: the tenant setting; $3: the tenant schema; $4: the tenant tables.
WITH RECURSIVE app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
reach(oid, path) AS (
    SELECT m.roleid, ARRAY[m.roleid] FROM pg_auth_members m, app WHERE m.member = app.oid
    UNION ALL
    SELECT m.roleid, r.path || m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
    WHERE NOT m.roleid = ANY(r.path)),
createrole AS (
    SELECT g.rolname::text AS name,
           -- the role granted to the app role on the shortest way there ('' for the app role itself)
           coalesce((SELECT pg_get_userbyid(r.path[1])::text FROM reach r WHERE r.oid = g.oid
                     ORDER BY cardinality(r.path) LIMIT 1), '') AS granted
    FROM pg_roles g
    WHERE g.rolcreaterole AND (g.oid IN (SELECT oid FROM app) OR g.oid IN (SELECT oid FROM reach)))
SELECT ARRAY(SELECT name FROM createrole ORDER BY name) AS createrole_roles,
       ARRAY(SELECT granted FROM createrole ORDER BY name) AS createrole_granted,
       ARRAY(SELECT format('%s for objects of %s%s: %s', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE $1 END,
                           pg_get_userbyid(da.defaclrole),
                           CASE WHEN da.defaclnamespace = 0 THEN '' ELSE ' in schema ' || da.defaclnamespace::regnamespace::text END,
                           string_agg(DISTINCT x.privilege_type, ', ' ORDER BY x.privilege_type))
             FROM pg_default_acl da, aclexplode(da.defaclacl) x
             WHERE da.defaclobjtype = 'r'
               AND (x.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER')
                    -- PUBLIC: every role, whatever its grants, reads a table created later
                    OR (x.privilege_type = 'SELECT' AND x.grantee = 0))
               AND (x.grantee = 0 OR x.grantee IN (SELECT oid FROM app))
             GROUP BY x.grantee, da.defaclrole, da.defaclnamespace ORDER BY 1) AS default_privileges,
       -- default SELECT for the app role: a table created later is readable
       -- before RLS is on it
       ARRAY(SELECT format('%s for objects of %s%s', $1, pg_get_userbyid(da.defaclrole),
                           CASE WHEN da.defaclnamespace = 0 THEN '' ELSE ' in schema ' || da.defaclnamespace::regnamespace::text END)
             FROM pg_default_acl da, aclexplode(da.defaclacl) x
             WHERE da.defaclobjtype = 'r' AND x.privilege_type = 'SELECT' AND x.grantee IN (SELECT oid FROM app)
             ORDER BY 1) AS default_select,
       -- role and database defaults, case-insensitive names
       ARRAY(SELECT CASE WHEN s.setrole = 0 THEN 'database ' || coalesce(d.datname::text, '?')
                         ELSE 'role ' || pg_get_userbyid(s.setrole)::text
                              || CASE WHEN s.setdatabase = 0 THEN '' ELSE ' in database ' || coalesce(d.datname::text, '?') END
                    END || ': ' || c
             FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
             WHERE lower(split_part(c, '=', 1)) = lower($2)
               AND (s.setrole = (SELECT oid FROM app) OR s.setrole = 0)
               AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
             ORDER BY 1) AS setting_defaults,
       -- what this session started with, before rlsctl set anything: a value here
       -- that no role or database default explains comes from postgresql.conf (a
       -- parameter group on RDS) or the connection's options
       coalesce(current_setting($2, true), '') AS session_start_value,
       ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT EXISTS (SELECT 1 FROM app) AND n.nspname = $3
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
               AND NOT c.relname = ANY ($4::text[])
               AND NOT has_table_privilege('public', c.oid, 'SELECT')
             ORDER BY 1) AS unreadable_by_new_app
