-- SECURITY DEFINER and LEAKPROOF functions outside the system schemas, with
-- what BYP003 needs to judge a definer function: its owner and whether that
-- owner reads tenant rows past RLS (superuser, BYPASSRLS, the break-glass
-- role's privileges, or a tenant table's owner), its language and comment
-- (where a review is recorded), and the names of the user functions (a call
-- to one runs with the owner's rights too).
-- $1: app role; $2: schema; $3: tenant tables; $4: break-glass role.
WITH tenant AS (SELECT c.relowner, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $2 AND c.relname = ANY($3::text[]) AND c.relkind IN ('r', 'p')),
     admin AS (SELECT oid FROM pg_roles WHERE rolname = $4),
     user_functions AS (SELECT array_agg(DISTINCT p.proname::text) AS names
                        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
SELECT p.oid::regprocedure::text AS signature,
       n.nspname::text AS schema,
       p.proname::text AS name,
       p.prosecdef AS security_definer,
       p.proleakproof AS leakproof,
       EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS pins_search_path,
       coalesce((SELECT has_function_privilege(r.oid, p.oid, 'EXECUTE') FROM pg_roles r WHERE r.rolname = $1), false) AS app_can_execute,
       coalesce(p.prosrc, '') AS source,
       l.lanname::text AS language,
       pg_get_userbyid(p.proowner)::text AS owner,
       o.rolsuper OR o.rolbypassrls
           OR coalesce((SELECT pg_has_role(p.proowner, admin.oid, 'USAGE') FROM admin), false)
           OR EXISTS (SELECT 1 FROM tenant t WHERE pg_has_role(p.proowner, t.relowner, 'USAGE')) AS owner_reaches_rows,
       coalesce(obj_description(p.oid, 'pg_proc'), '') AS comment,
       coalesce((SELECT names FROM user_functions), '{}') AS user_functions
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
JOIN pg_roles o ON o.oid = p.proowner
WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND (p.prosecdef OR p.proleakproof)
ORDER BY 1
