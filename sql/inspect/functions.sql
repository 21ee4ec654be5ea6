-- SECURITY DEFINER and LEAKPROOF functions outside the system schemas.
-- $1: the app role.
SELECT p.oid::regprocedure::text AS signature,
       n.nspname::text AS schema,
       p.proname::text AS name,
       p.prosecdef AS security_definer,
       p.proleakproof AS leakproof,
       EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS pins_search_path,
       coalesce((SELECT has_function_privilege(r.oid, p.oid, 'EXECUTE') FROM pg_roles r WHERE r.rolname = $1), false) AS app_can_execute,
       coalesce(p.prosrc, '') AS source
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND (p.prosecdef OR p.proleakproof)
ORDER BY 1
