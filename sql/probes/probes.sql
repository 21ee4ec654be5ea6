-- Statements that act on every tenant table in one round trip, whatever the
-- number of tables: DO blocks that take their input from the transaction-local
-- setting rlsctl_probe.input (JSON, sent as a bound parameter, so tenant ids
-- and names are data) and leave their result in rlsctl_probe.output.
--
-- Each table's work runs in its own sub-block that is always rolled back (by
-- raising RLSC0 once the result is in a variable): a rolled-back
-- subtransaction releases its locks, so one statement over 2,000 tables never
-- holds more than one table's locks at a time and fits a server left at
-- max_locks_per_transaction = 64. Writes are undone the same way.

-- step: probe_input
SELECT set_config('rlsctl_probe.input', $1, true)

-- step: probe_output
SELECT current_setting('rlsctl_probe.output')

-- step: probe_reads
-- Per table: the rows visible and, with a tenant, those of another tenant.
-- Input: {tables: [{schema, name, type}], column, setting, tenant (or null: no
-- tenant is set)}. Output: [{visible, foreign} | {error}].
DO $probe$
DECLARE
    input jsonb := current_setting('rlsctl_probe.input')::jsonb;
    tenant text := input->>'tenant';
    t jsonb;
    visible bigint;
    other bigint;
    result jsonb[] := '{}';
    outcome jsonb;
BEGIN
    IF tenant IS NOT NULL THEN
        PERFORM set_config(input->>'setting', tenant, true);
    END IF;
    FOR t IN SELECT * FROM jsonb_array_elements(input->'tables') LOOP
        BEGIN
            IF tenant IS NULL THEN
                EXECUTE format('SELECT count(*) FROM %I.%I', t->>'schema', t->>'name') INTO visible;
                other := visible;
            ELSE
                EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %I IS DISTINCT FROM $1::text::%s) FROM %I.%I',
                               input->>'column', t->>'type', t->>'schema', t->>'name')
                    INTO visible, other USING tenant;
            END IF;
            outcome := jsonb_build_object('visible', visible, 'foreign', other);
            RAISE EXCEPTION USING ERRCODE = 'RLSC0';
        EXCEPTION
            WHEN SQLSTATE 'RLSC0' THEN NULL;
            WHEN OTHERS THEN outcome := jsonb_build_object('error', SQLERRM || ' [' || SQLSTATE || ']');
        END;
        result := result || outcome;
    END LOOP;
    PERFORM set_config('rlsctl_probe.output', to_jsonb(result)::text, true);
END
$probe$

-- step: probe_writes
-- Per table, under the tenant: move a visible row to the other tenant, insert a
-- row for the other tenant (each undone), and the plan line that evaluates the
-- tenant setting per row, if any. Input: {tables: [{schema, name, type}],
-- column, setting, tenant, other}. Output: [{update, insert, per_row}], where
-- update and insert are {rows} or {state, message}.
DO $probe$
DECLARE
    input jsonb := current_setting('rlsctl_probe.input')::jsonb;
    other text := input->>'other';
    t jsonb;
    statement text;
    kind text;
    rows bigint;
    line text;
    per_row text;
    outcome jsonb;
    result jsonb[] := '{}';
BEGIN
    PERFORM set_config(input->>'setting', input->>'tenant', true);
    FOR t IN SELECT * FROM jsonb_array_elements(input->'tables') LOOP
        outcome := '{}';
        FOREACH kind IN ARRAY ARRAY['update', 'insert'] LOOP
            statement := CASE kind
                WHEN 'update' THEN format('UPDATE %1$I.%2$I SET %3$I = $1::text::%4$s WHERE ctid = (SELECT ctid FROM %1$I.%2$I LIMIT 1)',
                                          t->>'schema', t->>'name', input->>'column', t->>'type')
                WHEN 'insert' THEN CASE WHEN (t->>'partitioned')::boolean
                    -- a partitioned table routes a row by its partition key before any
                    -- policy is checked: copy a visible row, with the other tenant
                    THEN format('INSERT INTO %1$I.%2$I OVERRIDING SYSTEM VALUE SELECT (jsonb_populate_record(NULL::%1$I.%2$I, '
                                || 'to_jsonb(r) || jsonb_build_object(%3$L, $1))).* FROM %1$I.%2$I r LIMIT 1',
                                t->>'schema', t->>'name', input->>'column')
                    ELSE format('INSERT INTO %I.%I (%I) VALUES ($1::text::%s)',
                                t->>'schema', t->>'name', input->>'column', t->>'type')
                END
            END;
            BEGIN
                EXECUTE statement USING other;
                GET DIAGNOSTICS rows = ROW_COUNT;
                outcome := outcome || jsonb_build_object(kind, jsonb_build_object('rows', rows));
                RAISE EXCEPTION USING ERRCODE = 'RLSC0';
            EXCEPTION
                WHEN SQLSTATE 'RLSC0' THEN NULL;
                WHEN OTHERS THEN
                    outcome := outcome || jsonb_build_object(kind, jsonb_build_object('state', SQLSTATE, 'message', SQLERRM));
            END;
        END LOOP;
        per_row := NULL;
        BEGIN
            FOR line IN EXECUTE format('EXPLAIN SELECT * FROM %I.%I', t->>'schema', t->>'name') LOOP
                IF per_row IS NULL AND line LIKE '%Filter:%' AND line LIKE '%current_setting%' THEN
                    per_row := btrim(line);
                END IF;
            END LOOP;
            RAISE EXCEPTION USING ERRCODE = 'RLSC0';
        EXCEPTION
            WHEN SQLSTATE 'RLSC0' THEN NULL;
        END;
        result := result || (outcome || jsonb_build_object('per_row', per_row));
    END LOOP;
    PERFORM set_config('rlsctl_probe.output', to_jsonb(result)::text, true);
END
$probe$

-- step: count_null_tenants
-- Per table, the rows whose tenant column is NULL (apply's pre-flight, as the
-- session; only asked for tables it sees in full). Input: {tables: [{schema,
-- name}], column}. Output: [count].
DO $probe$
DECLARE
    input jsonb := current_setting('rlsctl_probe.input')::jsonb;
    t jsonb;
    n bigint;
    result jsonb[] := '{}';
BEGIN
    FOR t IN SELECT * FROM jsonb_array_elements(input->'tables') LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM %I.%I WHERE %I IS NULL', t->>'schema', t->>'name', input->>'column')
                INTO n;
            RAISE EXCEPTION USING ERRCODE = 'RLSC0';
        EXCEPTION
            WHEN SQLSTATE 'RLSC0' THEN NULL;
        END;
        result := result || to_jsonb(n);
    END LOOP;
    PERFORM set_config('rlsctl_probe.output', to_jsonb(result)::text, true);
END
$probe$
