//! Logs of every layout and shape, read as the server writes them.

use super::*;

const RECORD: &str = r#"{"table" : "public.customers", "access" : "read", "tenant" : null, "query" : "SELECT count(*)\nFROM customers -- ü€ split anywhere", "role" : "app_user", "at" : "2026-11-27T05:00:00.1+00:00"}"#;

fn read(layout: &Layout, text: &str, chunk: usize) -> Found {
    let mut found = Found::default();
    let mut reader = LogReader::new(layout, "test", &mut found);
    for part in text.as_bytes().chunks(chunk.max(1)) {
        reader.feed(part).unwrap();
    }
    reader.finish().unwrap();
    found
}

#[test]
fn a_record_counts_only_where_the_server_wrote_it() {
    let prefix = Layout::Plain(Prefix::new("%m [%p] %a ").unwrap());
    let real = format!("2026-11-27 05:00:00.100 UTC [42] psql LOG:  {MARKER}{RECORD}\n");
    // The application name carries a marker: the real record still counts, once.
    let hidden = format!("2026-11-27 05:00:00.100 UTC [42] {MARKER}x LOG:  {MARKER}{RECORD}\n");
    // A forged one in the application name, before a real message that is not a record.
    let forged_app = format!(
        "2026-11-27 05:00:00.100 UTC [42] x LOG:  {MARKER}{RECORD} LOG:  statement: select 1\n"
    );
    let error = format!(
        "2026-11-27 05:00:00.100 UTC [42] psql ERROR:  invalid input syntax for type integer: \"{MARKER}{RECORD}\"\n\
         2026-11-27 05:00:00.100 UTC [42] psql STATEMENT:  select '{MARKER}{RECORD}'::int\n"
    );
    // A statement whose comment holds a newline and a line that looks like a record.
    let continuation = format!(
        "2026-11-27 05:00:00.100 UTC [42] psql LOG:  statement: select 1 /*\n\t2026-11-27 05:00:00.100 UTC [42] psql LOG:  {MARKER}{RECORD} */\n"
    );
    for (text, expected) in [
        (real.as_str(), 1),
        (hidden.as_str(), 1),
        (forged_app.as_str(), 0),
        (error.as_str(), 0),
        (continuation.as_str(), 0),
    ] {
        for chunk in [1, 7, 4096] {
            let found = read(&prefix, text, chunk);
            assert_eq!(found.records.len(), expected, "chunk {chunk}: {text}");
        }
    }
    // RDS's fixed prefix, and the SQLSTATE of log_error_verbosity = verbose.
    let rds = Layout::Plain(Prefix::new(RDS_PREFIX).unwrap());
    let line = format!(
        "2026-11-27 05:00:00 UTC:10.0.0.5(51234):app_user@shop:[42]:LOG:  00000: {MARKER}{RECORD}\n"
    );
    let found = read(&rds, &line, 5);
    assert_eq!(found.records.len(), 1);
    // The line's time is the time alone, not the zone run on into `%r:...`.
    assert_eq!(
        found.first_logged.as_deref(),
        Some("2026-11-27 05:00:00 UTC")
    );
}

#[test]
fn json_and_csv_logs_count_only_the_message_of_log_entries() {
    let entry = |severity: &str| {
        serde_json::json!({"timestamp": "x", "error_severity": severity, "application_name": MARKER, "message": format!("{MARKER}{RECORD}")})
            .to_string()
    };
    let text = format!("{}\n{}\n", entry("LOG"), entry("ERROR"));
    assert_eq!(read(&Layout::Json, &text, 3).records.len(), 1);
    let row = |severity: &str, message: &str| {
        format!(
            "2026-11-27 05:00:00.100 UTC,\"app_user\",\"db\",42,\"127.0.0.1:5\",ab.cd,1,\"SELECT\",2026-11-27 05:00:00 UTC,3/4,0,{severity},00000,\"{}\",,,,,,,,\"psql\",client backend,,0\n",
            message.replace('"', "\"\"")
        )
    };
    // A statement field spanning lines with a row-looking line inside it.
    let sneaky = format!(
        "select 1 /*\n{}*/",
        row("LOG", &format!("{MARKER}{RECORD}"))
    );
    let text = format!(
        "{}{}{}",
        row("LOG", &format!("{MARKER}{RECORD}")),
        row("ERROR", &format!("{MARKER}{RECORD}")),
        row("LOG", &sneaky)
    );
    for chunk in [1, 13, 8192] {
        assert_eq!(
            read(&Layout::Csv, &text, chunk).records.len(),
            1,
            "chunk {chunk}"
        );
    }
}

#[test]
fn every_log_must_read_in_its_layout_and_logs_together_cover_where_all_reach() {
    let prefix = Layout::Plain(Prefix::new("%m [%p] ").unwrap());
    let right = "2026-11-27 05:00:00.100 UTC [42] LOG:  checkpoint starting: time\n\
                 2026-11-27 06:00:00.100 UTC [42] LOG:  checkpoint complete\n";
    let other = "2026-11-27 05:30:00 UTC:10.0.0.5(5):app@shop:[7]:LOG:  connection received\n";
    let mut found = read(&prefix, right, 64);
    assert!(found.read_whole("a.log").is_ok());
    // A second instance's log in another layout: named, and refused.
    let mut reader = LogReader::new(&prefix, "replica.log", &mut found);
    reader.feed(other.as_bytes()).unwrap();
    reader.finish().unwrap();
    let err = found.read_whole("both").unwrap_err().to_string();
    assert!(err.contains("replica.log"), "{err}");
    // Together, two logs cover from the later first entry to the earlier last one.
    let mut primary = read(&prefix, right, 64);
    let replica = read(
        &prefix,
        "2026-11-27 05:10:00.000 UTC [9] LOG:  a\n2026-11-27 05:50:00.000 UTC [9] LOG:  b\n",
        64,
    );
    primary.absorb(replica);
    assert_eq!(
        primary.first_logged.as_deref(),
        Some("2026-11-27 05:10:00.000 UTC")
    );
    assert_eq!(
        primary.last_logged.as_deref(),
        Some("2026-11-27 05:50:00.000 UTC")
    );
    assert_eq!(primary.files.len(), 2);
}

#[test]
fn long_lines_are_skipped_and_counted_and_nul_is_refused() {
    let prefix = Layout::Plain(Prefix::new("%m [%p] ").unwrap());
    let long = "x".repeat(MAX_LINE + 10);
    let text = format!("{long}\n2026-11-27 05:00:00.100 UTC [42] LOG:  {MARKER}{RECORD}\n{long}");
    let found = read(&prefix, &text, 65536);
    assert_eq!((found.records.len(), found.skipped_long), (1, 2));
    let mut found = Found::default();
    let mut reader = LogReader::new(&prefix, "zero", &mut found);
    let err = reader.feed(&[0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("not a text log"), "{err}");
}
