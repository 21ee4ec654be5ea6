-- Rows whose tenant column is NULL, per installed table, counted by the
-- bundle's helper as the break-glass role (the app role cannot see them).
SELECT schema_name, table_name, null_rows FROM rlsctl.null_tenant_counts()
