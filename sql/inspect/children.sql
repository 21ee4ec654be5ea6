-- Partitions and inheritance children of tenant tables.
SELECT DISTINCT format('%s.%s', cn.nspname, c.relname) AS name, format('%s.%s', pn.nspname, p.relname) AS parent,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS force
FROM kids k JOIN pg_class c ON c.oid = k.oid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.parent JOIN pg_namespace pn ON pn.oid = p.relnamespace
ORDER BY 1
