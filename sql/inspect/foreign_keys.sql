-- Foreign keys that carry tenant data where the policies do not look, in two
-- kinds. `child`: a table without the tenant column that references a tenant
-- table (its rows belong to a tenant, yet no isolation policy can cover
-- them), with whether the app role can read it and whether RLS with a policy
-- of its own is on it. `cross`: a key between tenant tables that leaves the
-- tenant column out, so a row of one tenant may reference another tenant's
-- row (the key's checks ignore row security: a tenant learns that the row
-- exists, and blocks its deletion).
-- $1: schema; $2: tenant column; $3: app role; $4: tenant table names.
, tenant_or_kid AS (SELECT oid FROM tenant UNION SELECT oid FROM kids),
keys AS (
    SELECT con.oid, con.conname, con.conrelid, con.confrelid, con.conkey, con.confkey
    FROM pg_constraint con
    WHERE con.contype = 'f' AND con.confrelid IN (SELECT oid FROM tenant_or_kid)
      -- a partition's copy of its parent's key is the parent's key
      AND con.conparentid = 0),
tenant_column(rel, attnum) AS (
    SELECT a.attrelid, a.attnum FROM pg_attribute a
    WHERE a.attrelid IN (SELECT conrelid FROM keys UNION SELECT confrelid FROM keys)
      AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped)
SELECT CASE WHEN k.conrelid IN (SELECT oid FROM tenant_or_kid) THEN 'cross' ELSE 'child' END AS kind,
       format('%s.%s', cn.nspname, c.relname) AS name,
       k.conname::text AS constraint_name,
       format('%s.%s', pn.nspname, p.relname) AS parent,
       pg_get_constraintdef(k.oid) AS definition,
       coalesce((SELECT has_schema_privilege(app.oid, cn.oid, 'USAGE')
                        AND has_table_privilege(app.oid, c.oid, 'SELECT') FROM app), false) AS app_can_read,
       c.relrowsecurity AND EXISTS (SELECT 1 FROM pg_policy pol WHERE pol.polrelid = c.oid) AS covered
FROM keys k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE cn.nspname NOT IN ('pg_catalog', 'information_schema', 'rlsctl')
  AND CASE WHEN k.conrelid IN (SELECT oid FROM tenant_or_kid)
           -- a tenant table's key is tenant-safe when it pairs the tenant columns
           THEN NOT EXISTS (SELECT 1 FROM unnest(k.conkey, k.confkey) AS pair(own, other)
                            JOIN tenant_column tc ON tc.rel = k.conrelid AND tc.attnum = pair.own
                            JOIN tenant_column tp ON tp.rel = k.confrelid AND tp.attnum = pair.other)
           -- a table with the tenant column is RLS006's (covered or not)
           ELSE NOT EXISTS (SELECT 1 FROM tenant_column tc WHERE tc.rel = k.conrelid) END
ORDER BY 1, 2, 3
