//! The [`Backend`] operations on PostgreSQL. Each write is one transaction that first locks the connection's
//! revision row (so writes to one connection take turns), checks the store's recipient and, for conditional
//! writes, the revision read and the lease, then writes the record, its tag and its sealed rows, bumps the
//! revision and the change counter, and notifies. Each read that acts on a connection is one statement (one
//! snapshot) whose rows are authenticated with the record's tag, as in redb.

use std::collections::BTreeMap;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{signal, Fail, PgStore};
use crate::admin_token::AdminToken;
use crate::authorization_request::{self as authz, PendingAuthorization, Taken};
use crate::audit::AuditEntry;
use crate::backend::{
    Backend, ImportOutcome, Lease, LeaseWait, NewTokens, RefreshGrant, Resealed, SealedConnection, TokenSnapshot,
    LAPSE_CHECK_EVERY,
};
use crate::error::{ReadError, WriteError};
use crate::location::StoreLocation;
use crate::keys::{Keys, SecretField};
use crate::record::{now_unix, Connection, NewConnection, ProtocolOptions, Status};
use crate::sealed_rows::{apply_tokens, slot, view, SealedRows};

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Runs `sql` as a statement prepared once per pooled connection.
async fn query(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

async fn execute(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> Result<u64, Fail> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// A connection as stored: its record, tag, revision and sealed rows.
struct Loaded {
    record: Vec<u8>,
    tag: Vec<u8>,
    revision: Option<u64>,
    rows: SealedRows,
}

const LOAD: &str = "SELECT c.record, c.tag, r.revision, s.field, s.sealed FROM wasm_host_connections c \
     LEFT JOIN wasm_host_revisions r ON r.name = c.name LEFT JOIN wasm_host_secrets s ON s.name = c.name \
     WHERE c.name = $1";

const LOCK_REVISION: &str = "SELECT revision FROM wasm_host_revisions WHERE name = $1 FOR UPDATE";

const BUMP_REVISION: &str = "INSERT INTO wasm_host_revisions VALUES ($1, 1) ON CONFLICT (name) \
     DO UPDATE SET revision = wasm_host_revisions.revision + 1 RETURNING revision";

/// Removes the pending authorizations that expired more than `$2` seconds before `$1` (Unix seconds).
const PURGE_AUTHORIZATION_REQUESTS: &str = "DELETE FROM wasm_host_authorization_requests WHERE expires_at + $2 < $1";

/// Why a write stopped: a store error, or the caller's own error (not found, changed, tampered...).
type WriteResult<T> = Result<T, WriteError>;

impl PgStore {
    fn rerr(&self) -> impl Fn(Fail) -> ReadError + '_ {
        |f| self.read_err(f)
    }

    fn werr(&self) -> impl Fn(Fail) -> WriteError + '_ {
        |f| self.write_err(f)
    }

    fn corrupt(&self, name: &str, detail: String) -> ReadError {
        ReadError::Corrupt { store: self.location.clone(), name: name.to_owned(), detail }
    }

    fn tampered(&self, name: &str) -> ReadError {
        ReadError::Tampered { store: self.location.clone(), name: name.to_owned() }
    }

    fn put_row(&self, rows: &mut SealedRows, name: &str, field: &str, sealed: Vec<u8>) -> Result<(), ReadError> {
        let field = SecretField::parse(field)
            .ok_or_else(|| self.corrupt(name, format!("unknown secret field `{}`", crate::printable(field))))?;
        rows[slot(field)] = Some(sealed);
        Ok(())
    }

    async fn load(&self, c: &impl GenericClient, name: &str) -> Result<Option<Loaded>, ReadError> {
        let rows = query(c, LOAD, &[&name]).await.map_err(self.rerr())?;
        let Some(first) = rows.first() else { return Ok(None) };
        let mut loaded = Loaded {
            record: first.get(0),
            tag: first.get(1),
            revision: first.get::<_, Option<i64>>(2).map(|r| r as u64),
            rows: Default::default(),
        };
        for row in &rows {
            if let (Some(field), Some(sealed)) = (row.get::<_, Option<&str>>(3), row.get::<_, Option<Vec<u8>>>(4)) {
                self.put_row(&mut loaded.rows, name, field, sealed)?;
            }
        }
        Ok(Some(loaded))
    }

    fn decode_admin_token(&self, name: &str, record: &[u8]) -> Result<AdminToken, ReadError> {
        AdminToken::decode(record).map_err(|x| ReadError::CorruptAdminToken {
            store: self.location.clone(),
            name: name.to_owned(),
            detail: x.to_string(),
        })
    }

    fn decode(&self, name: &str, record: &[u8]) -> Result<Connection, ReadError> {
        Connection::decode(record).map_err(|e| self.corrupt(name, e.to_string()))
    }

    /// Checks, in constant time, that the tag covers exactly the record, its revision and the sealed rows.
    fn verify_decoded(&self, name: &str, loaded: &Loaded, conn: &Connection, keys: &Keys) -> Result<(), ReadError> {
        let genuine = conn.name == name
            && loaded.revision == Some(conn.revision)
            && keys.record_tag_matches(&view(name, conn.revision, &loaded.record, &loaded.rows), &loaded.tag);
        if genuine { Ok(()) } else { Err(self.tampered(name)) }
    }

    fn verified(&self, name: &str, loaded: &Loaded, keys: &Keys) -> Result<Connection, ReadError> {
        let conn = self.decode(name, &loaded.record)?;
        self.verify_decoded(name, loaded, &conn, keys)?;
        Ok(conn)
    }

    /// Inside a writing transaction: the store's recipient must be `keys`' (recorded on first use). Locked for
    /// the transaction, so a `store rekey` committing meanwhile waits for it or is seen by it.
    async fn claim_recipient(&self, tx: &Transaction<'_>, keys: &Keys, exclusive: bool) -> WriteResult<()> {
        let mine = keys.recipient();
        execute(tx, "INSERT INTO wasm_host_meta VALUES ('recipient', $1) ON CONFLICT (key) DO NOTHING", &[&mine])
            .await
            .map_err(self.werr())?;
        let sql = if exclusive {
            "SELECT value FROM wasm_host_meta WHERE key = 'recipient' FOR UPDATE"
        } else {
            "SELECT value FROM wasm_host_meta WHERE key = 'recipient' FOR SHARE"
        };
        let stored: String = query(tx, sql, &[]).await.map_err(self.werr())?[0].get(0);
        if stored != mine {
            return Err(WriteError::WrongIdentity {
                store: self.location.clone(),
                store_recipient: stored,
                identity_recipient: mine,
            });
        }
        Ok(())
    }

    /// Writes `conn` (its revision already bumped) with `rows` and their tag.
    async fn store_state(
        &self,
        tx: &Transaction<'_>,
        conn: &Connection,
        rows: &SealedRows,
        keys: &Keys,
    ) -> WriteResult<()> {
        let name = conn.name.as_str();
        let json = conn.encode();
        let tag = keys.record_tag(&view(name, conn.revision, &json, rows)).to_vec();
        let e = self.werr();
        execute(
            tx,
            "INSERT INTO wasm_host_connections VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET record = $2, tag = $3",
            &[&name, &json, &tag],
        )
        .await
        .map_err(&e)?;
        execute(tx, "DELETE FROM wasm_host_secrets WHERE name = $1", &[&name]).await.map_err(&e)?;
        let (fields, sealed): (Vec<&str>, Vec<&[u8]>) = SecretField::ALL
            .iter()
            .zip(rows)
            .filter_map(|(field, row)| row.as_deref().map(|row| (field.as_str(), row)))
            .unzip();
        execute(
            tx,
            "INSERT INTO wasm_host_secrets SELECT $1, f, s FROM unnest($2::text[], $3::bytea[]) AS t(f, s)",
            &[&name, &fields, &sealed],
        )
        .await
        .map_err(&e)?;
        Ok(())
    }

    async fn bump_revision(&self, tx: &Transaction<'_>, name: &str) -> WriteResult<u64> {
        let rows = query(tx, BUMP_REVISION, &[&name]).await.map_err(self.werr())?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    /// Bumps the change counter, notifies the listening hosts (delivered at commit) and commits.
    async fn commit_change(&self, tx: Transaction<'_>) -> WriteResult<()> {
        let e = self.werr();
        let rows = query(&tx, "UPDATE wasm_host_generation SET value = value + 1 WHERE id = 1 RETURNING value", &[])
            .await
            .map_err(&e)?;
        let value: i64 = rows[0].get(0);
        execute(&tx, "SELECT pg_notify($1, $2)", &[&signal::CHANNEL, &value.to_string()]).await.map_err(&e)?;
        tx.commit().await.map_err(|x| e(x.into()))?;
        self.signal.seen(value as u64);
        Ok(())
    }

    /// Inside a writing transaction: ends `holder`'s lease, refusing the write when another holder has an
    /// unexpired one (ours lapsed and was taken over: that holder may be refreshing from the same grant).
    async fn end_lease(&self, tx: &Transaction<'_>, name: &str, holder: &str) -> WriteResult<()> {
        let e = self.werr();
        execute(tx, "DELETE FROM wasm_host_leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map_err(&e)?;
        let taken = query(tx, "SELECT 1 FROM wasm_host_leases WHERE name = $1 AND until > now()", &[&name])
            .await
            .map_err(&e)?;
        if taken.is_empty() { Ok(()) } else { Err(WriteError::Changed(name.to_owned())) }
    }

    /// One write to an existing connection: `change` edits its authenticated record and sealed rows; `holder`'s
    /// lease ends; with `expect_revision`, nothing is written unless the connection is still at that revision.
    async fn modify(
        &self,
        name: &str,
        holder: Option<&str>,
        expect_revision: Option<u64>,
        keys: &Keys,
        change: impl FnOnce(&mut Connection, &mut SealedRows) -> WriteResult<()>,
    ) -> WriteResult<Connection> {
        let e = self.werr();
        let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
        let tx = client.transaction().await.map_err(|x| e(x.into()))?;
        self.claim_recipient(&tx, keys, false).await?;
        let current = query(&tx, LOCK_REVISION, &[&name]).await.map_err(&e)?.first().map(|r| r.get::<_, i64>(0) as u64);
        let loaded = self.load(&tx, name).await?;
        if let Some(expected) = expect_revision {
            if loaded.is_none() || current != Some(expected) {
                return Err(WriteError::Changed(name.to_owned()));
            }
        }
        let Some(mut loaded) = loaded else { return Err(WriteError::NotFound(name.to_owned())) };
        let mut conn = self.verified(name, &loaded, keys)?;
        if let Some(holder) = holder {
            self.end_lease(&tx, name, holder).await?;
        }
        conn.updated_at = now_unix();
        change(&mut conn, &mut loaded.rows)?;
        conn.revision = self.bump_revision(&tx, name).await?;
        self.store_state(&tx, &conn, &loaded.rows, keys).await?;
        self.commit_change(tx).await?;
        Ok(conn)
    }

    /// Every connection as stored, in name order, from `c`'s snapshot.
    async fn load_all(&self, c: &impl GenericClient) -> Result<Vec<(String, Loaded)>, ReadError> {
        let e = self.rerr();
        let records = query(
            c,
            "SELECT c.name, c.record, c.tag, r.revision FROM wasm_host_connections c \
             LEFT JOIN wasm_host_revisions r ON r.name = c.name ORDER BY c.name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(&e)?;
        let mut all: BTreeMap<String, Loaded> = records
            .iter()
            .map(|r| {
                let loaded = Loaded {
                    record: r.get(1),
                    tag: r.get(2),
                    revision: r.get::<_, Option<i64>>(3).map(|v| v as u64),
                    rows: Default::default(),
                };
                (r.get::<_, String>(0), loaded)
            })
            .collect();
        for row in query(c, "SELECT name, field, sealed FROM wasm_host_secrets", &[]).await.map_err(&e)? {
            let name: &str = row.get(0);
            if let Some(loaded) = all.get_mut(name) {
                self.put_row(&mut loaded.rows, name, row.get(1), row.get(2))?;
            }
        }
        // BTreeMap orders by bytes, as redb does and as COLLATE "C" did.
        Ok(all.into_iter().collect())
    }
}

impl Backend for PgStore {
    fn location(&self) -> StoreLocation {
        self.location.clone()
    }

    fn recipient(&self) -> Result<Option<String>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT value FROM wasm_host_meta WHERE key = 'recipient'", &[])
                .await
                .map_err(self.rerr())?;
            Ok(rows.first().map(|r| r.get(0)))
        })
    }

    fn bind_keys(&self, keys: &Keys) -> Result<(), WriteError> {
        match self.recipient()? {
            Some(stored) if stored == keys.recipient() => Ok(()),
            _ => self.run(async {
                let e = self.werr();
                let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
                let tx = client.transaction().await.map_err(|x| e(x.into()))?;
                self.claim_recipient(&tx, keys, false).await?;
                tx.commit().await.map_err(|x| e(x.into()))
            }),
        }
    }

    /// A PostgreSQL store never held untagged records (it was made after tags existed): nothing to upgrade.
    fn upgrade(&self, keys: &Keys) -> Result<Option<Vec<Connection>>, WriteError> {
        self.bind_keys(keys).map(|()| None)
    }

    fn get(&self, name: &str) -> Result<Option<Connection>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT record FROM wasm_host_connections WHERE name = $1", &[&name])
                .await
                .map_err(self.rerr())?;
            rows.first().map(|r| self.decode(name, r.get(0))).transpose()
        })
    }

    fn list(&self) -> Result<Vec<Connection>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT name, record FROM wasm_host_connections ORDER BY name COLLATE \"C\"", &[])
                .await
                .map_err(self.rerr())?;
            rows.iter().map(|r| self.decode(r.get(0), r.get(1))).collect()
        })
    }

    fn generation(&self) -> Option<u64> {
        self.signal.load()
    }

    fn revision(&self, name: &str) -> Result<Option<u64>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT revision FROM wasm_host_revisions WHERE name = $1", &[&name])
                .await
                .map_err(self.rerr())?;
            Ok(rows.first().map(|r| r.get::<_, i64>(0) as u64))
        })
    }

    fn create_with(
        &self,
        new: NewConnection,
        options: ProtocolOptions,
        client_secret: &SecretString,
        keys: &Keys,
    ) -> Result<Connection, WriteError> {
        let mut rows = SealedRows::default();
        rows[slot(SecretField::ClientSecret)] =
            Some(keys.seal(&new.name, SecretField::ClientSecret, client_secret.expose_secret().as_bytes())?);
        let mut conn = Connection::created(new, options, now_unix());
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            self.claim_recipient(&tx, keys, false).await?;
            // Counting on from a deleted connection of the same name, never back to 1; the row lock it takes
            // makes a concurrent create of the same name wait, then see this one.
            conn.revision = self.bump_revision(&tx, &conn.name).await?;
            let exists = query(&tx, "SELECT 1 FROM wasm_host_connections WHERE name = $1", &[&conn.name])
                .await
                .map_err(&e)?;
            if !exists.is_empty() {
                return Err(WriteError::AlreadyExists(conn.name.clone()));
            }
            self.store_state(&tx, &conn, &rows, keys).await?;
            self.commit_change(tx).await?;
            Ok(conn)
        })
    }

    fn delete(&self, name: &str) -> Result<(), WriteError> {
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            query(&tx, LOCK_REVISION, &[&name]).await.map_err(&e)?;
            if execute(&tx, "DELETE FROM wasm_host_connections WHERE name = $1", &[&name]).await.map_err(&e)? == 0 {
                return Err(WriteError::NotFound(name.to_owned()));
            }
            execute(&tx, "DELETE FROM wasm_host_secrets WHERE name = $1", &[&name]).await.map_err(&e)?;
            // The revision outlives the record and keeps counting.
            self.bump_revision(&tx, name).await?;
            self.commit_change(tx).await
        })
    }

    fn write_tokens(
        &self,
        name: &str,
        tokens: NewTokens<'_>,
        keys: &Keys,
        expect_revision: Option<u64>,
    ) -> Result<Connection, WriteError> {
        let holder = tokens.release_lease;
        self.run(self.modify(name, holder, expect_revision, keys, |conn, rows| {
            apply_tokens(name, conn, rows, tokens, keys, expect_revision.is_some())
        }))
    }

    fn secret(&self, name: &str, field: SecretField, keys: &Keys) -> Result<Option<SecretString>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let Some(loaded) = self.load(&client, name).await? else { return Ok(None) };
            // Opened first, so a row of another identity or record is reported as that; then the tag must cover it.
            let Some(row) = &loaded.rows[slot(field)] else { return Ok(None) };
            let value = keys.open_string(name, field, row)?;
            self.verified(name, &loaded, keys)?;
            Ok(Some(value))
        })
    }

    fn connection(&self, name: &str, keys: &Keys) -> Result<Option<Connection>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let loaded = self.load(&client, name).await?;
            loaded.map(|l| self.verified(name, &l, keys)).transpose()
        })
    }

    fn token_snapshot(&self, name: &str, keys: &Keys) -> Result<Option<(Connection, Option<TokenSnapshot>)>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let Some(loaded) = self.load(&client, name).await? else { return Ok(None) };
            let connection = self.decode(name, &loaded.record)?;
            let handed_out = connection.status == Status::Authorized && connection.token.is_some();
            let access = match &loaded.rows[slot(SecretField::AccessToken)] {
                Some(row) if handed_out => keys.open_string(name, SecretField::AccessToken, row)?,
                _ => {
                    self.verify_decoded(name, &loaded, &connection, keys)?;
                    return Ok(Some((connection, None)));
                }
            };
            let refresh = match (&loaded.rows[slot(SecretField::RefreshToken)], connection.expose_refresh_token) {
                (Some(row), true) => Some(keys.open_string(name, SecretField::RefreshToken, row)?),
                _ => None,
            };
            self.verify_decoded(name, &loaded, &connection, keys)?;
            Ok(Some((connection, Some(TokenSnapshot { access_token: access, refresh_token: refresh }))))
        })
    }

    fn refresh_grant(&self, name: &str, keys: &Keys) -> Result<Option<RefreshGrant>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let Some(loaded) = self.load(&client, name).await? else { return Ok(None) };
            let connection = self.verified(name, &loaded, keys)?;
            let open = |field: SecretField| -> Result<Option<SecretString>, ReadError> {
                Ok(loaded.rows[slot(field)].as_deref().map(|row| keys.open_string(name, field, row)).transpose()?)
            };
            let refresh_token = open(SecretField::RefreshToken)?;
            let client_secret = open(SecretField::ClientSecret)?;
            Ok(Some(RefreshGrant { connection, refresh_token, client_secret }))
        })
    }

    /// Timed by the database's clock (`now()`), so hosts whose clocks differ agree on when a lease lapses.
    fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Lease, WriteError> {
        self.run(async {
            let e = self.werr();
            let client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let taken = query(
                &client,
                "INSERT INTO wasm_host_leases VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
                 WHERE wasm_host_leases.until < now() OR wasm_host_leases.holder = EXCLUDED.holder RETURNING 1",
                &[&name, &holder, &ttl_ms],
            )
            .await
            .map_err(&e)?;
            if !taken.is_empty() {
                return Ok(Lease::Acquired);
            }
            let held = query(
                &client,
                "SELECT (extract(epoch FROM until) * 1000)::bigint FROM wasm_host_leases WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(&e)?;
            Ok(Lease::Held { until_ms: held.first().map_or(0, |r| r.get(0)) })
        })
    }

    /// A lease released without a write that ends it (the refresh failed, or another host's had already stored
    /// what was needed) moves the change counter with its release, which wakes the hosts waiting for it
    /// ([`Backend::wait_lease_end`]). Rare: a successful refresh ends its lease in its own write.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WriteError> {
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| self.write_err(x))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            let released =
                execute(&tx, "DELETE FROM wasm_host_leases WHERE name = $1 AND holder = $2", &[&name, &holder])
                    .await
                    .map_err(&e)?;
            if released == 0 {
                // Not ours (any more): nothing changed, nobody to wake. Dropping `tx` rolls back nothing.
                return Ok(());
            }
            self.commit_change(tx).await
        })
    }

    /// On the change signal (signal.rs), for at most [`LAPSE_CHECK_EVERY`]: a lease that lapses sends nothing.
    fn wait_lease_end(&self, _name: &str, generation: Option<u64>, timeout: Duration) -> Result<LeaseWait, WriteError> {
        Ok(match generation {
            Some(seen) => self.signal.wait_past(seen, timeout.min(LAPSE_CHECK_EVERY)),
            None => LeaseWait::Unwatched,
        })
    }

    fn mark(
        &self,
        name: &str,
        status: Status,
        reason: &str,
        holder: Option<&str>,
        revision: Option<u64>,
        keys: &Keys,
    ) -> Result<(), WriteError> {
        self.run(self.modify(name, holder, revision, keys, |conn, _| {
            conn.status = status;
            conn.status_reason = Some(reason.to_owned());
            Ok(())
        }))
        .map(drop)
    }

    fn update_registration(
        &self,
        name: &str,
        change: Box<dyn FnOnce(&mut Connection) + '_>,
        client_secret: Option<&SecretString>,
        keys: &Keys,
    ) -> Result<Connection, WriteError> {
        let sealed = client_secret
            .map(|s| keys.seal(name, SecretField::ClientSecret, s.expose_secret().as_bytes()))
            .transpose()?;
        self.run(self.modify(name, None, None, keys, |conn, rows| {
            change(conn);
            if let Some(sealed) = sealed {
                rows[slot(SecretField::ClientSecret)] = Some(sealed);
            }
            conn.reinstate_refused_client();
            Ok(())
        }))
    }

    fn mark_revoked(&self, name: &str, keys: &Keys) -> Result<(), WriteError> {
        self.run(self.modify(name, None, None, keys, |conn, rows| {
            conn.status = Status::Revoked;
            conn.status_reason = None;
            conn.token = None;
            for field in [SecretField::AccessToken, SecretField::RefreshToken, SecretField::IdToken, SecretField::Credentials] {
                rows[slot(field)] = None;
            }
            Ok(())
        }))
        .map(drop)
    }

    fn reseal(&self, old: &Keys, new: &Keys) -> Result<Resealed, WriteError> {
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            // Exclusive: writers sealing with `old` finish first or wait and then see `new`.
            self.claim_recipient(&tx, old, true).await?;
            let all = self.load_all(&tx).await?;
            let mut secrets = 0;
            for (name, loaded) in &all {
                let conn = self.verified(name, loaded, old)?;
                let mut rows = SealedRows::default();
                for (i, field) in SecretField::ALL.into_iter().enumerate() {
                    if let Some(row) = &loaded.rows[i] {
                        let plain = old.open(name, field, row)?;
                        rows[i] = Some(new.seal(name, field, plain.expose_secret())?);
                        secrets += 1;
                    }
                }
                // The record and revision stay as they are: only the seals and the tag change.
                let tag = new.record_tag(&view(name, conn.revision, &loaded.record, &rows)).to_vec();
                execute(&tx, "UPDATE wasm_host_connections SET tag = $2 WHERE name = $1", &[name, &tag])
                    .await
                    .map_err(&e)?;
                for (field, row) in SecretField::ALL.iter().zip(&rows) {
                    if let Some(row) = row {
                        execute(
                            &tx,
                            "UPDATE wasm_host_secrets SET sealed = $3 WHERE name = $1 AND field = $2",
                            &[name, &field.as_str(), row],
                        )
                        .await
                        .map_err(&e)?;
                    }
                }
            }
            // Admin tokens' tags are made with the identity's key too: vouched for again by `new`, or none is.
            let tokens = query(&tx, "SELECT name, record, tag FROM wasm_host_admin_tokens FOR UPDATE", &[])
                .await
                .map_err(&e)?;
            for row in &tokens {
                let (name, record, tag): (String, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
                if !old.admin_token_tag_matches(&record, &tag) {
                    return Err(ReadError::TamperedAdminToken { store: self.location.clone(), name }.into());
                }
                let tag = new.admin_token_tag(&record).to_vec();
                execute(&tx, "UPDATE wasm_host_admin_tokens SET tag = $2 WHERE name = $1", &[&name, &tag])
                    .await
                    .map_err(&e)?;
            }
            // Pending remote authorizations are sealed to `old`: they are dropped (their laptops start again).
            execute(&tx, "DELETE FROM wasm_host_authorization_requests", &[]).await.map_err(&e)?;
            execute(&tx, "UPDATE wasm_host_meta SET value = $1 WHERE key = 'recipient'", &[&new.recipient()])
                .await
                .map_err(&e)?;
            // No connection's data changes (cached tokens are the same values): no revision or counter moves.
            tx.commit().await.map_err(|x| e(x.into()))?;
            Ok(Resealed { connections: all.len(), secrets })
        })
    }

    fn sealed_connections(&self, keys: &Keys) -> Result<Vec<SealedConnection>, ReadError> {
        self.run(async {
            let mut client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(|x| self.read_err(x))?;
            let mut out = Vec::new();
            for (name, loaded) in self.load_all(&tx).await? {
                let connection = self.verified(&name, &loaded, keys)?;
                let sealed = SecretField::ALL
                    .into_iter()
                    .zip(loaded.rows)
                    .filter_map(|(field, row)| row.map(|row| (field, row)))
                    .collect();
                out.push((connection, sealed));
            }
            Ok(out)
        })
    }

    fn import_sealed(&self, entries: Vec<SealedConnection>, keys: &Keys, replace: bool) -> Result<ImportOutcome, WriteError> {
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            self.claim_recipient(&tx, keys, false).await?;
            let names: Vec<&str> = entries.iter().map(|(c, _)| c.name.as_str()).collect();
            let existing: Vec<String> = query(
                &tx,
                "SELECT name FROM wasm_host_connections WHERE name = ANY($1) ORDER BY name COLLATE \"C\"",
                &[&names],
            )
            .await
            .map_err(&e)?
            .iter()
            .map(|r| r.get(0))
            .collect();
            if !existing.is_empty() && !replace {
                return Ok(ImportOutcome::Conflicts(existing));
            }
            let now = now_unix();
            for (mut conn, sealed) in entries {
                let mut rows = SealedRows::default();
                for (field, value) in sealed {
                    rows[slot(field)] = Some(value);
                }
                execute(&tx, "DELETE FROM wasm_host_leases WHERE name = $1", &[&conn.name]).await.map_err(&e)?;
                conn.revision = self.bump_revision(&tx, &conn.name).await?;
                conn.updated_at = now;
                self.store_state(&tx, &conn, &rows, keys).await?;
            }
            self.commit_change(tx).await?;
            Ok(ImportOutcome::Imported { replaced: existing })
        })
    }

    fn create_admin_token(&self, token: &AdminToken, keys: &Keys) -> Result<(), WriteError> {
        let record = token.encode();
        let tag = keys.admin_token_tag(&record).to_vec();
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            self.claim_recipient(&tx, keys, false).await?;
            let inserted = execute(
                &tx,
                "INSERT INTO wasm_host_admin_tokens VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                &[&token.name, &token.sha256, &record, &tag],
            )
            .await
            .map_err(&e)?;
            if inserted == 0 {
                return Err(WriteError::AdminTokenExists(token.name.clone()));
            }
            tx.commit().await.map_err(|x| e(x.into()))
        })
    }

    fn admin_tokens(&self) -> Result<Vec<AdminToken>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT name, record FROM wasm_host_admin_tokens ORDER BY name COLLATE \"C\"", &[])
                .await
                .map_err(self.rerr())?;
            rows.iter().map(|r| self.decode_admin_token(r.get(0), r.get(1))).collect()
        })
    }

    fn revoke_admin_token(&self, name: &str) -> Result<bool, WriteError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.write_err(x))?;
            let removed = execute(&client, "DELETE FROM wasm_host_admin_tokens WHERE name = $1", &[&name])
                .await
                .map_err(self.werr())?;
            Ok(removed > 0)
        })
    }

    fn admin_token_by_hash(&self, sha256: &str, keys: &Keys) -> Result<Option<AdminToken>, ReadError> {
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT name, record, tag FROM wasm_host_admin_tokens WHERE sha256 = $1", &[&sha256])
                .await
                .map_err(self.rerr())?;
            let Some(row) = rows.first() else { return Ok(None) };
            let (name, record, tag): (String, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
            let token = self.decode_admin_token(&name, &record)?;
            // The tag covers the record, whose hash must be the one looked up (the column is only an index).
            if token.name != name || token.sha256 != sha256 || !keys.admin_token_tag_matches(&record, &tag) {
                return Err(ReadError::TamperedAdminToken { store: self.location.clone(), name });
            }
            Ok(Some(token))
        })
    }

    fn put_authorization_request(
        &self,
        state: &SecretString,
        pending: &PendingAuthorization,
        keys: &Keys,
        now: i64,
    ) -> Result<(), WriteError> {
        let row = authz::seal(state, pending, keys)?;
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            self.claim_recipient(&tx, keys, false).await?;
            execute(&tx, PURGE_AUTHORIZATION_REQUESTS, &[&now, &authz::PURGE_AFTER]).await.map_err(&e)?;
            execute(
                &tx,
                "INSERT INTO wasm_host_authorization_requests VALUES ($1, $2, $3, $4, $5, NULL)",
                &[&row.key, &row.record, &row.sealed, &row.tag, &row.expires_at],
            )
            .await
            .map_err(&e)?;
            tx.commit().await.map_err(|x| e(x.into()))
        })
    }

    fn take_authorization_request(&self, state: &str, keys: &Keys, now: i64) -> Result<Taken, WriteError> {
        let key = authz::state_key(state);
        self.run(async {
            let e = self.werr();
            let mut client = self.pool.get().await.map_err(|x| e(x.into()))?;
            let tx = client.transaction().await.map_err(|x| e(x.into()))?;
            // Purge first, then lock the row: every take locks in that order, so two never wait on each other.
            execute(&tx, PURGE_AUTHORIZATION_REQUESTS, &[&now, &authz::PURGE_AFTER]).await.map_err(&e)?;
            // FOR UPDATE: a second take waits for the first to commit, then reads the row it marked used.
            let rows = query(
                &tx,
                "SELECT record, sealed, tag, used_at FROM wasm_host_authorization_requests WHERE state_sha256 = $1 \
                 FOR UPDATE",
                &[&key],
            )
            .await
            .map_err(&e)?;
            let Some(row) = rows.first() else { return Ok(Taken::Unknown) };
            let (record_bytes, sealed, tag, used_at): (Vec<u8>, Vec<u8>, Vec<u8>, Option<i64>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let (pending, used_tag) =
                match authz::decide(&self.location, &key, &record_bytes, &sealed, &tag, used_at.is_some(), keys, now)? {
                    authz::Decision::Refuse(taken) => return Ok(taken),
                    authz::Decision::Take { pending, used_tag } => (pending, used_tag),
                };
            execute(
                &tx,
                "UPDATE wasm_host_authorization_requests SET sealed = '', tag = $2, used_at = $3 WHERE state_sha256 = $1",
                &[&key, &used_tag, &now],
            )
            .await
            .map_err(&e)?;
            tx.commit().await.map_err(|x| e(x.into()))?;
            Ok(Taken::Pending(pending))
        })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), WriteError> {
        let record = entry.encode();
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.write_err(x))?;
            execute(&client, "INSERT INTO wasm_host_audit (record) VALUES ($1)", &[&record]).await.map_err(self.werr())?;
            Ok(())
        })
    }

    fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ReadError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async {
            let client = self.pool.get().await.map_err(|x| self.read_err(x))?;
            let rows = query(&client, "SELECT id, record FROM wasm_host_audit ORDER BY id DESC LIMIT $1", &[&limit])
                .await
                .map_err(self.rerr())?;
            let mut out = rows
                .iter()
                .map(|r| {
                    AuditEntry::decode(r.get(1)).map_err(|x| ReadError::CorruptAudit {
                        store: self.location.clone(),
                        id: r.get::<_, i64>(0) as u64,
                        detail: x.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.reverse();
            Ok(out)
        })
    }

}
