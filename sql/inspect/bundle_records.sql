-- What the bundle recorded: the installed-table registry, the last apply, the
-- open break-glass entries. Read only when the schema is there and readable.
-- $1: the tenant schema.
-- (policy_since as milliseconds since the epoch, from the column, or, for a
-- registry from before it was recorded, NULL through to_jsonb; then the
-- registry's checksum or digest as the last apply recorded it, and as it is now)
SELECT 'registry' AS kind, ARRAY[table_name, tenant_column, installed_using, installed_check,
                                 (extract(epoch FROM {{policy_since}}) * 1000)::bigint::text] AS fields
FROM rlsctl.tenant_tables tt WHERE schema_name = $1
UNION ALL
-- the reach set through to_jsonb: a history table from before it was recorded has no such column
-- (lists of names as JSON arrays: a name may hold any character, a comma too)
(SELECT 'history', ARRAY[to_jsonb(bypass_roles)::text, applied_by || ' at ' || applied_at::text,
                    to_jsonb(ARRAY(SELECT DISTINCT h.applied_by FROM rlsctl.bundle_history h))::text,
                    (to_jsonb(last) -> 'reach')::text] || {{registry_sums}}
                 || ARRAY[to_jsonb(last) ->> 'break_glass_logging',
                          -- the policies it did not create, as it found them
                          (to_jsonb(last) -> 'existing_policies')::text]
 FROM rlsctl.bundle_history last ORDER BY id DESC LIMIT 1)
UNION ALL
SELECT 'break-glass', ARRAY[to_jsonb(ARRAY(SELECT schema_name || '.' || t FROM unnest(tables) t))::text,
                           started_by, started_at::text, reason]
FROM rlsctl.break_glass_log WHERE ended_at IS NULL AND action = 'disable'
