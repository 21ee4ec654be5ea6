-- Break-glass and uninstall. {{table}} is "schema"."table".

-- step: disable_rls
ALTER TABLE {{table}} NO FORCE ROW LEVEL SECURITY;
ALTER TABLE {{table}} DISABLE ROW LEVEL SECURITY;

-- step: restore_rls
ALTER TABLE {{table}} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{table}} FORCE ROW LEVEL SECURITY;

-- step: uninstall_table
DROP POLICY IF EXISTS {{policy}} ON {{table}};
DROP POLICY IF EXISTS {{admin_policy}} ON {{table}};
ALTER TABLE {{table}} {{rls}} ROW LEVEL SECURITY;
ALTER TABLE {{table}} {{force}} ROW LEVEL SECURITY;

-- step: revoke_table
-- Only while the bundle's roles exist (there is nothing to revoke from them otherwise).
REVOKE ALL ON TABLE {{table}} FROM {{app_role}}, {{admin_role}};

-- step: regrant_public
GRANT {{privileges}} ON TABLE {{table}} TO PUBLIC;

-- step: revoke_sequence
REVOKE ALL ON SEQUENCE {{sequence}} FROM {{app_role}}, {{admin_role}};

-- step: uninstall_schema
DROP FUNCTION IF EXISTS rlsctl.null_tenant_counts();
DROP FUNCTION IF EXISTS rlsctl.shadow_seen(text, text);
DROP TABLE IF EXISTS rlsctl.tenant_tables;
DROP TABLE IF EXISTS rlsctl.bundle_history;

-- step: revoke_schema
-- Only while the bundle's roles exist.
REVOKE ALL ON SCHEMA {{schema}} FROM {{app_role}}, {{admin_role}};
REVOKE CONNECT ON DATABASE {{database}} FROM {{app_role}}, {{admin_role}};

-- step: drop_roles
REVOKE ALL ON SCHEMA rlsctl FROM {{app_role}}, {{admin_role}};
REVOKE ALL ON rlsctl.break_glass_log FROM {{app_role}}, {{admin_role}};
DROP ROLE IF EXISTS {{app_role}};
DROP ROLE IF EXISTS {{admin_role}};

-- step: log_break_glass
-- Bound parameters: $1 schema, $2 tables, $3 reason.
INSERT INTO rlsctl.break_glass_log (action, schema_name, tables, reason) VALUES ('disable', $1, $2, $3);

-- step: log_to_shadow
-- A table put back in shadow mode (rollback --to-shadow): recorded like a
-- break-glass, and closed at once (the table stays protected by RLS; monitor
-- reports it under RLS008 until apply enforces it again).
-- Bound parameters: $1 schema, $2 tables, $3 reason.
INSERT INTO rlsctl.break_glass_log (action, schema_name, tables, reason, ended_by, ended_at)
VALUES ('to-shadow', $1, $2, $3, session_user, now());

-- step: close_break_glass
UPDATE rlsctl.break_glass_log SET ended_at = now(), ended_by = session_user
WHERE ended_at IS NULL AND action = 'disable' RETURNING schema_name, tables;

-- step: log_uninstall
-- Bound parameters: $1 schema, $2 reason.
INSERT INTO rlsctl.break_glass_log (action, schema_name, tables, reason, ended_at, ended_by)
VALUES ('uninstall', $1, ARRAY(SELECT table_name FROM rlsctl.tenant_tables WHERE schema_name = $1), $2, now(), session_user);

-- step: replaced_policies
-- The policies apply found and replaced (apply --replace-policies), as each
-- history row recorded them, oldest first: uninstall recreates each from the
-- first record of it (its original definition). Read through to_jsonb, so a
-- history table from before the column existed answers NULL, not an error.
-- Bound parameter: $1 schema.
SELECT (to_jsonb(h) -> 'existing_policies')::text FROM rlsctl.bundle_history h
WHERE h.schema_name = $1 ORDER BY h.id
