//! What a database error says: about the database (it is down, busy, or locked) or about the
//! row (PostgreSQL refuses one of its values). Decided here, from the SQLSTATE, and nowhere else.

use docworker_shared::Rejection;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;

/// The meaning of a failed statement for the object whose row it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot take writes (unreachable, out of resources, shutting down, failing
    /// over, refusing this role): no object can be recorded, so receiving pauses until it
    /// answers. Also anything not recognised below: waiting loses nothing, a wrong verdict
    /// would.
    Outage,
    /// This statement lost to another (a lock held past `lock_timeout`, `statement_timeout`,
    /// a deadlock, a serialization failure): the database is up and the same write can succeed
    /// once the other lets go.
    Contention,
    /// PostgreSQL refused a value of the row: the same object gives the same refusal, so it is
    /// a verdict on the file.
    Refused(Rejection),
}

pub fn classify(error: &sqlx::Error) -> Fault {
    let sqlx::Error::Database(database) = error else {
        // I/O, TLS, protocol, pool timeouts and a closed pool are all about reaching the server.
        return Fault::Outage;
    };
    let Some(code) = database.code() else {
        return Fault::Outage;
    };
    if let Some(condition) = refusal(&code) {
        return Fault::Refused(Rejection::DatabaseRefused {
            sqlstate: code.into_owned(),
            condition,
            object: refused_object(database.as_ref()),
        });
    }
    match code.as_ref() {
        "40001" | "40P01" | "55P03" | "55006" | "57014" => Fault::Contention,
        _ => Fault::Outage,
    }
}

/// The condition name of a SQLSTATE that refuses a value (PostgreSQL's Appendix A): class 22
/// (data exception), 23 (integrity constraint violation), 54 (program limit exceeded, such as an
/// index row above the B-tree maximum).
fn refusal(code: &str) -> Option<&'static str> {
    Some(match code {
        "22001" => "string_data_right_truncation",
        "22003" => "numeric_value_out_of_range",
        "22007" => "invalid_datetime_format",
        "22008" => "datetime_field_overflow",
        "22021" => "character_not_in_repertoire",
        "22023" => "invalid_parameter_value",
        "22P02" => "invalid_text_representation",
        "22P05" => "untranslatable_character",
        "22030" => "duplicate_json_object_key_value",
        "22032" => "invalid_json_text",
        "23502" => "not_null_violation",
        "23503" => "foreign_key_violation",
        "23505" => "unique_violation",
        "23514" => "check_violation",
        "23P01" => "exclusion_violation",
        "54000" => "program_limit_exceeded",
        "54001" => "statement_too_complex",
        _ if code.starts_with("22") => "data_exception",
        _ if code.starts_with("23") => "integrity_constraint_violation",
        _ if code.starts_with("54") => "program_limit_exceeded",
        _ => return None,
    })
}

/// The constraint (or index) or column PostgreSQL names for a refusal. Only these identifiers:
/// the message and detail may quote the value.
fn refused_object(error: &dyn DatabaseError) -> Option<String> {
    let pg = error.try_downcast_ref::<PgDatabaseError>()?;
    if let Some(constraint) = pg.constraint() {
        return Some(constraint.to_owned());
    }
    if let Some(column) = pg.column() {
        return Some(match pg.table() {
            Some(table) => format!("{table}.{column}"),
            None => column.to_owned(),
        });
    }
    index_over_limit(pg)
}

/// An index row above the B-tree maximum comes with no constraint field; its message, "index row
/// size N exceeds btree version V maximum M for index \"name\"", holds sizes and the index's name
/// and nothing of the value.
fn index_over_limit(pg: &PgDatabaseError) -> Option<String> {
    if pg.code() != "54000" {
        return None;
    }
    let (_, quoted) = pg.message().split_once(" for index \"")?;
    quoted.strip_suffix('"').map(str::to_owned)
}

/// What may be logged and stored of a database error: a refusal by its condition alone (its
/// message may quote the refused value), anything else as PostgreSQL or the driver put it.
pub fn describe(error: &sqlx::Error) -> String {
    match classify(error) {
        Fault::Refused(rejection) => rejection.to_string(),
        Fault::Outage | Fault::Contention => match error {
            sqlx::Error::Database(database) => match database.code() {
                Some(code) => format!("{} (SQLSTATE {code})", database.message()),
                None => database.message().to_owned(),
            },
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_are_refusals_named_by_condition() {
        for (code, condition) in [
            ("22001", "string_data_right_truncation"),
            ("22P02", "invalid_text_representation"),
            ("22021", "character_not_in_repertoire"),
            ("22P05", "untranslatable_character"),
            ("23502", "not_null_violation"),
            ("23514", "check_violation"),
            ("54000", "program_limit_exceeded"),
            ("22999", "data_exception"),
            ("23999", "integrity_constraint_violation"),
        ] {
            assert_eq!(refusal(code), Some(condition), "{code}");
        }
    }

    #[test]
    fn availability_and_contention_are_not_refusals() {
        for code in [
            "08000", "08006", "08P01", "53100", "53200", "53300", "57P01", "57P02", "57P03",
            "25006", "42501", "42P01", "3D000", "28P01", "XX000", "58030", "40001", "40P01",
            "55P03", "57014",
        ] {
            assert_eq!(refusal(code), None, "{code}");
        }
    }

    #[test]
    fn errors_without_a_server_answer_are_outages() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Fault::Outage);
        assert_eq!(classify(&sqlx::Error::PoolClosed), Fault::Outage);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&sqlx::Error::Io(io)), Fault::Outage);
        assert_eq!(
            classify(&sqlx::Error::Protocol("unexpected message".into())),
            Fault::Outage
        );
    }
}
