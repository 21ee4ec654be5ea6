-- An RDS-shaped instance, as RDS makes one: the NOLOGIN roles rds_superuser and
-- rds_iam (which the master may grant, for IAM database authentication), and
-- the master user, which is not a superuser. Run by the sandbox's real
-- superuser; {{master}} is the quoted name, {{master_name}} the same as a
-- literal, {{verifier}} a SCRAM verifier literal.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') THEN
        CREATE ROLE rds_superuser NOLOGIN;
        GRANT pg_monitor, pg_signal_backend TO rds_superuser;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
        CREATE ROLE rds_iam NOLOGIN;
        -- on 16+ granting a role takes ADMIN OPTION on it (CREATEROLE did before)
        IF current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE 'GRANT rds_iam TO rds_superuser WITH ADMIN TRUE, INHERIT FALSE, SET FALSE';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {{master_name}}) THEN
        CREATE ROLE {{master}} WITH LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE NOREPLICATION
            VALID UNTIL 'infinity' PASSWORD {{verifier}} IN ROLE rds_superuser;
    END IF;
END
$$
