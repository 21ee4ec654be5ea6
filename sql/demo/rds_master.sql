-- An RDS-shaped instance, as RDS makes one: the NOLOGIN role rds_superuser and
-- the master user, which is not a superuser. Run by the sandbox's real
-- superuser; {{master}} is the quoted name, {{master_name}} the same as a
-- literal, {{verifier}} a SCRAM verifier literal.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') THEN
        CREATE ROLE rds_superuser NOLOGIN;
        GRANT pg_monitor, pg_signal_backend TO rds_superuser;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {{master_name}}) THEN
        CREATE ROLE {{master}} WITH LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE NOREPLICATION
            VALID UNTIL 'infinity' PASSWORD {{verifier}} IN ROLE rds_superuser;
    END IF;
END
$$
