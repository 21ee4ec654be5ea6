//! The forms people write, each classified as the server deparses it.

use super::*;

const COLUMN: &str = "tenant_id";
const SETTING: &str = "app.tenant_id";

fn scope(expr: &str) -> Scope {
    match classify(expr, COLUMN, SETTING) {
        Form::Scoped(scope) => scope,
        other => panic!("{expr}: {other:?}"),
    }
}

/// As PostgreSQL 15 deparses what people write (each taken from a real
/// server's pg_get_expr).
#[test]
fn the_forms_people_write_scope_to_the_tenant() {
    let exact = [
        // the bundle's own
        "(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\"))",
        // text column, subquery form
        "(tenant_id = ( SELECT current_setting('app.tenant_id'::text, true) AS current_setting))",
        // varchar column: the column is cast to text
        "((tenant_id)::text = NULLIF(current_setting('app.tenant_id'::text, true), ''::text))",
    ];
    for expr in exact {
        assert!(scope(expr).exact(), "{expr}");
    }
    let subquery = scope("(tenant_id = ( SELECT (current_setting('app.tenant_id'::text, true))::integer AS current_setting))");
    assert!(subquery.missing_ok && subquery.per_statement && subquery.raises_on_empty);
    let bigint = scope("(tenant_id = (( SELECT current_setting('app.tenant_id'::text, true) AS current_setting))::bigint)");
    assert!(bigint.per_statement && bigint.raises_on_empty);
    let raising = scope("(tenant_id = (current_setting('app.tenant_id'::text))::integer)");
    assert!(!raising.missing_ok && !raising.per_statement);
    assert!(raising.raises_without_tenant().is_some());
    let reversed = scope("((current_setting('app.tenant_id'::text))::integer = tenant_id)");
    assert_eq!(reversed, raising);
    let uuid = scope("(tenant_id = (current_setting('app.tenant_id'::text, true))::uuid)");
    assert!(uuid.missing_ok && uuid.raises_on_empty);
    let citext = scope("(tenant_id = (current_setting('app.tenant_id'::text))::citext)");
    assert!(!citext.raises_on_empty && !citext.missing_ok);
    let varchar = scope(
        "((tenant_id)::text = ((current_setting('app.tenant_id'::text))::character varying)::text)",
    );
    assert!(!varchar.raises_on_empty);
    let fallback = scope("(tenant_id = (COALESCE(NULLIF(current_setting('app.tenant_id'::text, true), ''::text), '00000000-0000-0000-0000-000000000000'::text))::uuid)");
    assert_eq!(
        fallback.fallback.as_deref(),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert!(!fallback.exact());
    let empty_fallback = scope(
        "((tenant_id)::text = COALESCE(current_setting('app.tenant_id'::text, true), ''::text))",
    );
    assert!(empty_fallback.exact(), "{empty_fallback:?}");
    let list = scope("(tenant_id = ANY ((string_to_array(current_setting('app.tenant_id'::text, true), ','::text))::integer[]))");
    assert!(list.list && list.missing_ok && !list.exact());
    let list_in = scope("(tenant_id IN ( SELECT (unnest(string_to_array(current_setting('app.tenant_id'::text, true), ','::text)))::uuid AS unnest))");
    assert!(list_in.list && list_in.per_statement);
    let narrowed = scope("((tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer) AND true)");
    assert!(narrowed.missing_ok && !narrowed.raises_on_empty);
}

#[test]
fn what_does_not_scope_says_why() {
    for (expr, why) in [
        ("true", "every row"),
        ("((tenant_id = (current_setting('app.tenant_id'::text))::integer) OR true)", "OR"),
        ("(other_id = (current_setting('app.tenant_id'::text))::integer)", "other_id"),
        ("(tenant_id = (current_setting('app.current_tenant'::text))::integer)", "app.current_tenant"),
        ("(tenant_id IS NOT NULL)", "IS NOT"),
        ("(tenant_id = 42)", "constant"),
        ("(tenant_id <> (current_setting('app.tenant_id'::text))::integer)", "<>"),
        ("(tenant_id = owner_id)", "owner_id"),
        (
            "((tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\")) OR rlsctl.shadow_seen('public.orders'::text, 'read'::text))",
            "shadow_seen",
        ),
    ] {
        match classify(expr, COLUMN, SETTING) {
            Form::Unscoped(detail) => assert!(detail.contains(why), "{expr}: {detail}"),
            other => panic!("{expr}: {other:?}"),
        }
    }
}

#[test]
fn what_cannot_be_read_is_said_so() {
    for expr in [
        "(tenant_id = CASE WHEN true THEN 1 ELSE 2 END)",
        "(tenant_id = ( SELECT t.id FROM tenants t WHERE (t.name = CURRENT_USER)))",
        "(tenant_id = 'unterminated",
    ] {
        assert!(
            matches!(classify(expr, COLUMN, SETTING), Form::NotUnderstood(_)),
            "{expr}"
        );
    }
}

proptest::proptest! {
    /// Any text gets an answer, never a panic.
    #[test]
    fn any_text_is_classified(expr in "\\PC{0,200}") {
        let _ = classify(&expr, COLUMN, SETTING);
    }
}
