-- What apply records in the same transaction as its changes: the registry of
-- installed tables (with the policy as the server deparsed it, the md5 of its
-- stored trees, and each table's state before the first apply) and a history
-- row. Bound parameters.

-- step: forget_tables
DELETE FROM rlsctl.tenant_tables WHERE schema_name = $1 AND NOT (table_name = ANY($2::text[]));

-- step: register_tables
INSERT INTO rlsctl.tenant_tables AS tt (schema_name, table_name, tenant_column, installed_using, installed_check,
                                        installed_using_tree, installed_check_tree,
                                        installed_using_md5, installed_check_md5,
                                        original_rls, original_force, original_public_privileges)
SELECT $1, w.name, $3, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       NULL, NULL, md5(p.polqual::text), md5(p.polwithcheck::text),
       w.rls, w.force, coalesce(string_to_array(nullif(w.public, ''), ','), '{}')::text[]
FROM unnest($2::text[], $5::bool[], $6::bool[], $7::text[]) AS w(name, rls, force, public)
JOIN pg_namespace n ON n.nspname = $1
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = $4
ON CONFLICT (schema_name, table_name) DO UPDATE
   SET tenant_column = EXCLUDED.tenant_column, installed_using = EXCLUDED.installed_using,
       installed_check = EXCLUDED.installed_check, installed_using_tree = EXCLUDED.installed_using_tree,
       installed_check_tree = EXCLUDED.installed_check_tree,
       installed_using_md5 = EXCLUDED.installed_using_md5, installed_check_md5 = EXCLUDED.installed_check_md5,
       -- a policy that changed form (enforced and shadow) starts its time anew
       policy_since = CASE WHEN (tt.installed_using, tt.installed_check)
                                IS NOT DISTINCT FROM (EXCLUDED.installed_using, EXCLUDED.installed_check)
                           THEN tt.policy_since ELSE now() END;

-- step: record_history
INSERT INTO rlsctl.bundle_history (version, checksum, schema_name, tables, tenant_column, tenant_setting,
                                   app_role, admin_role, bypass_roles, changes, reach, registry_checksum,
                                   registry_digest, break_glass_logging, existing_policies)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
        ARRAY(SELECT rolname::text FROM pg_roles WHERE rolsuper OR rolbypassrls ORDER BY 1), $9, $10::text::jsonb,
        -- the registry as this apply left it: monitor recomputes it (DRF008);
        -- the first for an older rlsctl, which knows only that form
        {{registry_checksum}}, {{registry_digest}}, $11, $12::text::jsonb);
