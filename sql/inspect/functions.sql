-- SECURITY DEFINER and LEAKPROOF functions outside the system schemas, with
-- what BYP003 needs to judge a definer function: its owner (whether the owner
-- reaches every row is the reach set's answer, sql/inspect/reach.sql), what it
-- returns (a trigger or event-trigger function cannot be called; a trigger
-- function runs when the app role writes to a table it is attached to), whether
-- an extension owns it, its language and comment (where a review is recorded),
-- and the names of the user functions (a call to one runs with the owner's
-- rights too).
-- $1: app role.
WITH app AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     user_functions AS (SELECT array_agg(DISTINCT p.proname::text) AS names
                        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
SELECT p.oid::regprocedure::text AS signature,
       n.nspname::text AS schema,
       p.proname::text AS name,
       p.prosecdef AS security_definer,
       p.proleakproof AS leakproof,
       (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS search_path,
       coalesce((SELECT has_function_privilege(r.oid, p.oid, 'EXECUTE') FROM pg_roles r WHERE r.rolname = $1), false) AS app_can_execute,
       coalesce(p.prosrc, '') AS source,
       l.lanname::text AS language,
       pg_get_userbyid(p.proowner)::text AS owner,
       p.prorettype::regtype::text AS returns,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') AS in_extension,
       -- a trigger function runs as its owner when the app role fires one of its triggers
       EXISTS (SELECT 1 FROM pg_trigger tg, app
               WHERE tg.tgfoid = p.oid AND tg.tgenabled <> 'D'
                 AND has_table_privilege(app.oid, tg.tgrelid, 'INSERT, UPDATE, DELETE, TRUNCATE')) AS app_fires,
       coalesce(obj_description(p.oid, 'pg_proc'), '') AS comment,
       coalesce((SELECT names FROM user_functions), '{}') AS user_functions
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND (p.prosecdef OR p.proleakproof)
ORDER BY 1
