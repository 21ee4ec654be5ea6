-- The bundle's own schema: history, the installed-table registry, the
-- break-glass log, and a SECURITY DEFINER helper with a pinned search_path.
-- Every statement is idempotent.

-- step: schema
CREATE SCHEMA IF NOT EXISTS rlsctl;
REVOKE ALL ON SCHEMA rlsctl FROM PUBLIC;
GRANT USAGE ON SCHEMA rlsctl TO {{app_role}}, {{admin_role}};

CREATE TABLE IF NOT EXISTS rlsctl.bundle_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version        text        NOT NULL,
    checksum       text        NOT NULL,
    schema_name    text        NOT NULL,
    tables         text[]      NOT NULL,
    tenant_column  text        NOT NULL,
    tenant_setting text        NOT NULL,
    app_role       text        NOT NULL,
    admin_role     text        NOT NULL,
    -- roles that could bypass RLS when this was applied: the baseline for drift
    bypass_roles   text[]      NOT NULL,
    changes        integer     NOT NULL,
    applied_by     text        NOT NULL DEFAULT session_user,
    client_addr    inet                 DEFAULT inet_client_addr(),
    applied_at     timestamptz NOT NULL DEFAULT now(),
    -- who reached every row right after this apply (sql/inspect/reach.sql):
    -- monitor's baseline for DRF004
    reach          jsonb,
    -- md5 of the installed-table registry as this apply left it (DRF008), as an
    -- older rlsctl computes it (sql/bundle/registry_checksum.sql) ...
    registry_checksum text,
    -- ... and as this one does, with each policy's stored trees by their md5
    -- (sql/bundle/registry_digest.sql)
    registry_digest text,
    -- the setting that logs the break-glass role's statements (DRF009)
    break_glass_logging text,
    -- the policies on tenant tables that apply did not create, as it found
    -- them, and what it did with each (kept, or replaced: rollback
    -- --uninstall recreates those exactly)
    existing_policies jsonb
);
-- installed by an rlsctl that recorded neither yet
ALTER TABLE rlsctl.bundle_history ADD COLUMN IF NOT EXISTS reach jsonb;
ALTER TABLE rlsctl.bundle_history ADD COLUMN IF NOT EXISTS registry_checksum text;
ALTER TABLE rlsctl.bundle_history ADD COLUMN IF NOT EXISTS break_glass_logging text;
ALTER TABLE rlsctl.bundle_history ADD COLUMN IF NOT EXISTS registry_digest text;
ALTER TABLE rlsctl.bundle_history ADD COLUMN IF NOT EXISTS existing_policies jsonb;

CREATE TABLE IF NOT EXISTS rlsctl.tenant_tables (
    schema_name                text    NOT NULL,
    table_name                 text    NOT NULL,
    tenant_column              text    NOT NULL,
    -- the policy as the server deparsed it when installed: drift compares with it
    installed_using            text    NOT NULL,
    installed_check            text    NOT NULL,
    -- the md5 of the stored trees (pg_node_tree as text): while they are
    -- unchanged, the checks reuse the deparsed text above instead of deparsing
    -- every policy. An older rlsctl kept the trees themselves (NULL now):
    -- comparing and hashing 2 kB of compressed tree twice per table cost more
    -- than the rest of monitor's read at 2,000 tables.
    installed_using_tree       text,
    installed_check_tree       text,
    installed_using_md5        text,
    installed_check_md5        text,
    -- the table as it was before the first apply: uninstall puts it back
    original_rls               boolean NOT NULL,
    original_force             boolean NOT NULL,
    original_public_privileges text[]  NOT NULL,
    -- when the isolation policy took its present form (enforced, or shadow):
    -- apply --enforce-clean calls a shadow table clean only for the time since
    policy_since               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name)
);
-- installed by an rlsctl that did not record it
ALTER TABLE rlsctl.tenant_tables ADD COLUMN IF NOT EXISTS policy_since timestamptz NOT NULL DEFAULT now();
ALTER TABLE rlsctl.tenant_tables ADD COLUMN IF NOT EXISTS installed_using_md5 text;
ALTER TABLE rlsctl.tenant_tables ADD COLUMN IF NOT EXISTS installed_check_md5 text;
ALTER TABLE rlsctl.tenant_tables ALTER COLUMN installed_using_tree DROP NOT NULL;
ALTER TABLE rlsctl.tenant_tables ALTER COLUMN installed_check_tree DROP NOT NULL;

CREATE TABLE IF NOT EXISTS rlsctl.break_glass_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action      text        NOT NULL,
    schema_name text        NOT NULL,
    tables      text[]      NOT NULL,
    reason      text        NOT NULL,
    started_by  text        NOT NULL DEFAULT session_user,
    client_addr inet                 DEFAULT inet_client_addr(),
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_by    text,
    ended_at    timestamptz
);

-- what the log records: a disable (break-glass), an uninstall, or one table put
-- back in shadow mode (rollback --to-shadow); an older rlsctl allowed the first two
ALTER TABLE rlsctl.break_glass_log DROP CONSTRAINT IF EXISTS break_glass_log_action_check;
ALTER TABLE rlsctl.break_glass_log ADD CONSTRAINT break_glass_log_action_check
    CHECK (action IN ('disable', 'uninstall', 'to-shadow'));

REVOKE ALL ON rlsctl.bundle_history, rlsctl.tenant_tables, rlsctl.break_glass_log FROM PUBLIC;
GRANT SELECT ON rlsctl.bundle_history, rlsctl.tenant_tables, rlsctl.break_glass_log TO {{app_role}}, {{admin_role}};

-- step: helper
-- Per installed tenant table, the number of rows whose tenant column is NULL:
-- rows no tenant can see. Owned by the break-glass role, which reaches every
-- row through its own policy (or BYPASSRLS); where it cannot see every row
-- (its policy was dropped, a restrictive policy narrows it) the count is NULL,
-- "unknown", rather than a reassuring zero. A NOT NULL column needs no scan.
CREATE OR REPLACE FUNCTION rlsctl.null_tenant_counts()
RETURNS TABLE (schema_name text, table_name text, null_rows bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    t record;
    me oid;
    bypasses boolean;
BEGIN
    SELECT r.oid, r.rolsuper OR r.rolbypassrls INTO me, bypasses FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    -- One pass over the registry, each table and its tenant column looked up
    -- by name through the catalog's indexes (a join on text scanned every
    -- relation, and every column of each table). A NOT NULL tenant column has
    -- no NULL rows: no scan, and who sees what is not asked.
    FOR t IN
        SELECT tt.schema_name, tt.table_name, tt.tenant_column, a.attnum IS NOT NULL AS has_column,
               coalesce(a.attnotnull, false) AS not_null,
               CASE WHEN coalesce(a.attnotnull, false) THEN NULL ELSE
               NOT c.relrowsecurity
               OR (EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                           WHERE p.polrelid = c.oid AND p.polname = {{admin_policy}} AND p.polpermissive
                             AND p.polcmd IN ('*', 'r') AND me = ANY (p.polroles)
                             AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true')
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p, pg_catalog.unnest(p.polroles) pr(role)
                                   WHERE p.polrelid = c.oid AND NOT p.polpermissive AND p.polcmd IN ('*', 'r')
                                     AND (pr.role = 0 OR pg_catalog.pg_has_role(me, pr.role, 'USAGE')))) END AS sees_all
        FROM rlsctl.tenant_tables tt
        LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = tt.schema_name::pg_catalog.name
        LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = tt.table_name::pg_catalog.name
        LEFT JOIN LATERAL (SELECT a.attnum, a.attnotnull FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = tt.tenant_column::pg_catalog.name
                             AND NOT a.attisdropped LIMIT 1) a ON true
    LOOP
        schema_name := t.schema_name;
        table_name := t.table_name;
        null_rows := NULL;
        IF t.not_null THEN
            null_rows := 0;
        ELSIF t.has_column AND (bypasses OR t.sees_all) THEN
            -- In a sub-block rolled back once counted: its locks go with it,
            -- so 2,000 tables never hold more than one table's locks.
            BEGIN
                EXECUTE format('SELECT count(*) FROM %I.%I WHERE %I IS NULL', t.schema_name, t.table_name, t.tenant_column)
                    INTO null_rows;
                RAISE EXCEPTION USING ERRCODE = 'RLSC0';
            EXCEPTION
                WHEN SQLSTATE 'RLSC0' THEN NULL;
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$body$;
-- A new owner needs CREATE on the schema; the break-glass role gets it only for
-- this statement (a non-superuser applying hits this; a superuser never does).
GRANT CREATE ON SCHEMA rlsctl TO {{admin_role}};
ALTER FUNCTION rlsctl.null_tenant_counts() OWNER TO {{admin_role}};
REVOKE CREATE ON SCHEMA rlsctl FROM {{admin_role}};
REVOKE ALL ON FUNCTION rlsctl.null_tenant_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rlsctl.null_tenant_counts() TO {{app_role}}, {{admin_role}};

-- step: shadow_function
-- Shadow mode (apply --shadow): each tenant table's isolation policy becomes
-- `<isolation predicate> OR rlsctl.shadow_seen(<table>, <read|write>)`. A row
-- the tenant may see matches the predicate and never calls this; any other row
-- does, and is let through. Once per statement and table it records the access
-- that enforcement would have hidden with RAISE LOG: LOG reaches the server log
-- at the default log_min_messages and is never sent to the client, and it
-- works in read-only transactions. The record is self-describing (a marker,
-- then JSON on one line), whatever log_line_prefix says. "Once per statement"
-- is remembered in a transaction-local setting keyed by table and access,
-- holding the statement's start time. No SET clause: it would be paid per row.
-- PARALLEL UNSAFE: set_config is refused in a parallel worker.
CREATE OR REPLACE FUNCTION rlsctl.shadow_seen(p_table text, p_access text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $body$
DECLARE
    seen_key text := 'rlsctl_shadow.s' || pg_catalog.md5(p_table OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) p_access);
    stamp text := pg_catalog.statement_timestamp()::pg_catalog.text;
BEGIN
    IF pg_catalog.current_setting(seen_key, true) IS DISTINCT FROM stamp THEN
        PERFORM pg_catalog.set_config(seen_key, stamp, true);
        RAISE LOG USING MESSAGE = 'rlsctl-shadow ' OPERATOR(pg_catalog.||) pg_catalog.json_build_object(
            'table', p_table,
            'access', p_access,
            'tenant', NULLIF(pg_catalog.current_setting({{setting}}, true), ''),
            'query', pg_catalog.left(pg_catalog.current_query(), 2000),
            'role', current_user,
            'at', pg_catalog.clock_timestamp())::pg_catalog.text;
    END IF;
    RETURN true;
END
$body$;
REVOKE ALL ON FUNCTION rlsctl.shadow_seen(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rlsctl.shadow_seen(text, text) TO {{app_role}};

-- step: revoke_shadow_function
-- Enforcing: no policy calls the shadow function any more, and nobody else
-- should (it writes what the shadow report counts).
REVOKE EXECUTE ON FUNCTION rlsctl.shadow_seen(text, text) FROM {{app_role}};
