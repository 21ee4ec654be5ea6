-- Roles of the bundle. Sections are picked by rlsctl according to what exists;
-- {{name}} placeholders are filled with quoted identifiers.

-- step: create_app_role
CREATE ROLE {{app_role}} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;

-- step: create_admin_role
CREATE ROLE {{admin_role}} {{admin_login}} {{admin_bypass}} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;

-- step: log_admin_role
-- Every statement of a session that logs in as the break-glass role goes to
-- the server log (pgaudit.log per role, or log_statement). The setting is one
-- of two names fixed in the code; the value is a quoted literal.
ALTER ROLE {{admin_role}} SET {{setting}} = {{value}};

-- step: alter_role
-- Only the attributes that must change: on PostgreSQL 15 and older a
-- non-superuser may not even mention SUPERUSER, REPLICATION or BYPASSRLS.
ALTER ROLE {{role}} {{attributes}};

-- step: set_password
ALTER ROLE {{role}} PASSWORD {{password}};

-- step: grant_rds_iam
-- RDS IAM database authentication: the role then logs in with a token only.
GRANT rds_iam TO {{role}};

-- step: grant_connect
GRANT CONNECT ON DATABASE {{database}} TO {{role}};

-- step: grant_schema_usage
GRANT USAGE ON SCHEMA {{schema}} TO {{role}};

-- step: join_admin_role
-- A non-superuser (the RDS master) must be a member of the break-glass role to
-- hand it the helper function; through it, it also reaches every row of the
-- tenant tables (the break-glass policy), as the master did before FORCE.
GRANT {{admin_role}} TO CURRENT_USER;
