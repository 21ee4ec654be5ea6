-- What the bundle installed in the tenant schema, with each table's state
-- before the first apply (for uninstall) and the sequences its columns own.
-- Read by rollback only, after it found the registry. $1: the tenant schema.
SELECT tt.table_name,
       tt.original_rls,
       tt.original_force,
       tt.original_public_privileges,
       ARRAY(SELECT format('%s.%s', quote_ident(sn.nspname), quote_ident(s.relname))
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_depend d ON d.refobjid = c.oid AND d.classid = 'pg_class'::regclass
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             WHERE n.nspname = tt.schema_name AND c.relname = tt.table_name) AS sequences
FROM rlsctl.tenant_tables tt WHERE tt.schema_name = $1 ORDER BY 1
