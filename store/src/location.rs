//! [`StoreLocation`]: where a store is, as messages and errors name it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a store is: a redb file, or a PostgreSQL database. Displays as the file's path or as
/// `postgres://USER@HOST:PORT/DATABASE`; neither form (nor the `Debug` one) can hold a database password, since a
/// [`PostgresLocation`] is only made from the parsed URL's user, hosts, ports and database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    File(PathBuf),
    Postgres(PostgresLocation),
}

/// `postgres://USER@HOST:PORT/DATABASE` (each host when there are several): a database store's name in messages,
/// made by the URL parser (pg_store/location.rs) without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresLocation(String);

impl PostgresLocation {
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn new(shown: String) -> Self {
        PostgresLocation(shown)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a store location names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a redb file.
pub fn is_postgres(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

impl StoreLocation {
    /// The redb file's path; `None` for a database.
    pub fn as_file(&self) -> Option<&Path> {
        match self {
            StoreLocation::File(path) => Some(path),
            StoreLocation::Postgres(_) => None,
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::File(path) => path.display().fmt(f),
            StoreLocation::Postgres(db) => f.write_str(db.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_a_database_and_anything_else_a_file() {
        assert!(is_postgres(Path::new("postgresql://h/d")) && is_postgres(Path::new("postgres://u@h:1/d")));
        assert!(!is_postgres(Path::new("/var/lib/store.redb")) && !is_postgres(Path::new("postgres.redb")));
    }
}
