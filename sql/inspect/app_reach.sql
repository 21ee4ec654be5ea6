-- What the app role reaches: roles past RLS through membership (transitively),
-- and defaults of the tenant setting that give it a tenant before it sets one.
-- $1: the app role; $2: the tenant setting; $3: the break-glass role.
WITH RECURSIVE app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
reach(oid, path) AS (
    SELECT m.roleid, ARRAY[m.roleid] FROM pg_auth_members m, app WHERE m.member = app.oid
    UNION ALL
    SELECT m.roleid, r.path || m.roleid FROM pg_auth_members m JOIN reach r ON m.member = r.oid
    WHERE NOT m.roleid = ANY(r.path))
SELECT ARRAY(SELECT DISTINCT g.rolname::text FROM reach JOIN pg_roles g ON g.oid = reach.oid
             WHERE g.rolsuper OR g.rolbypassrls OR g.rolname = $3 ORDER BY 1) AS bypass_memberships,
       ARRAY(SELECT CASE WHEN s.setrole = 0 THEN 'database ' || coalesce(d.datname::text, '?')
                         ELSE 'role ' || pg_get_userbyid(s.setrole)::text
                              || CASE WHEN s.setdatabase = 0 THEN '' ELSE ' in database ' || coalesce(d.datname::text, '?') END
                    END || ': ' || c
             FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
             WHERE c LIKE $2 || '=%'
               AND (s.setrole = (SELECT oid FROM app) OR s.setrole = 0)
               AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
             ORDER BY 1) AS setting_defaults
