-- What the bundle does to each tenant table. {{table}} is "schema"."table".

-- step: revoke_public
REVOKE ALL ON TABLE {{table}} FROM PUBLIC;

-- step: revoke_app_extra
-- TRUNCATE and REFERENCES are not subject to row security; TRIGGER runs code as the owner.
REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLE {{table}} FROM {{app_role}};

-- step: grant_app
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {{table}} TO {{app_role}};

-- step: grant_admin
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {{table}} TO {{admin_role}};

-- step: grant_sequence
GRANT USAGE ON SEQUENCE {{sequence}} TO {{app_role}};

-- step: enable_rls
ALTER TABLE {{table}} ENABLE ROW LEVEL SECURITY;

-- step: force_rls
-- Without FORCE the table owner bypasses every policy.
ALTER TABLE {{table}} FORCE ROW LEVEL SECURITY;

-- step: drop_policy
DROP POLICY IF EXISTS {{policy}} ON {{table}};

-- step: create_policy
-- USING and WITH CHECK are the predicate below (or, in shadow mode, it OR the
-- shadow function). NULLIF: a tenant context that was set and ended reads as
-- '' and must match nothing. (SELECT ...): evaluated once per statement, not
-- once per row. The setting is cast to the column's type; the column is never cast.
CREATE POLICY {{policy}} ON {{table}} AS PERMISSIVE FOR ALL TO {{app_role}}
    USING ({{using}})
    WITH CHECK ({{check}});

-- step: drop_admin_policy
DROP POLICY IF EXISTS {{admin_policy}} ON {{table}};

-- step: create_admin_policy
-- The break-glass role reaches every row through its own policy, so it needs
-- no cluster-wide BYPASSRLS (which an RDS master cannot grant). The checks treat
-- it as intended unless the app role can reach the break-glass role.
CREATE POLICY {{admin_policy}} ON {{table}} AS PERMISSIVE FOR ALL TO {{admin_role}}
    USING (true)
    WITH CHECK (true);

-- step: predicate
{{column}} = (SELECT NULLIF(current_setting({{setting}}, true), '')::{{column_type}})
