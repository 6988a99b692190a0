//! Settings every command shares, resolved once from flags and environment before any work starts.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use secrecy::{ExposeSecret, SecretString};
use wasm_host_store::{Keys, Store};

use crate::args::Cli;
use crate::paths;

pub enum IdentityChoice {
    File(PathBuf),
    /// `WASM_HOST_IDENTITY_KEY`: the key itself, for containers that mount no files.
    Inline(SecretString),
}

pub struct Context {
    pub store_path: PathBuf,
    pub identity: IdentityChoice,
    /// `--remote`: the verbs that can, work through a server's admin API instead of the store.
    pub remote: Option<crate::remote::RemoteSettings>,
}

impl Context {
    pub fn resolve(cli: &Cli) -> Result<Self> {
        let store_path = match (&cli.store, crate::secret_env::store_url()) {
            (Some(p), _) => p.clone(),
            // A database URL in WASM_HOST_STORE, taken out of the environment at start (it may hold a password).
            (None, Some(url)) => PathBuf::from(url.expose_secret()),
            (None, None) => paths::default_store()?,
        };
        let identity = match (&cli.identity, crate::secret_env::identity_key()) {
            (Some(p), _) => IdentityChoice::File(p.clone()),
            (None, Some(key)) if !key.expose_secret().trim().is_empty() => IdentityChoice::Inline(key.clone()),
            (None, _) => IdentityChoice::File(paths::default_identity()?),
        };
        let remote = cli.remote.as_ref().map(|url| crate::remote::RemoteSettings {
            url: url.clone(),
            ca: cli.remote_ca.clone(),
            token_file: cli.admin_token_file.clone(),
        });
        Ok(Self { store_path, identity, remote })
    }

    /// The admin API client when `--remote` is given.
    pub fn remote(&self) -> Result<Option<crate::remote::RemoteClient>> {
        self.remote.as_ref().map(crate::remote::RemoteClient::new).transpose()
    }

    pub fn open_store(&self) -> Result<Store> {
        Ok(Store::open(&self.store_path)?)
    }

    /// The store if it exists, for verbs that only read (or that have nothing to do without a store): `None`
    /// on a machine where no connection was ever created, and nothing is created to find that out.
    pub fn existing_store(&self) -> Result<Option<Store>> {
        Ok(Store::open_existing(&self.store_path)?)
    }

    /// The identity, checked against the store. A missing identity file is created only while the store holds
    /// no secret; otherwise creating one would hide the real mistake (a wrong path) behind a decryption error.
    pub fn keys(&self, store: &Store) -> Result<Arc<Keys>> {
        let keys = self.load_keys(store)?;
        store.bind_keys(&keys).context("checking the identity against the store")?;
        Ok(Arc::new(keys))
    }

    /// The identity, not yet checked against the store: for `store upgrade`, which checks it itself.
    pub fn load_keys(&self, store: &Store) -> Result<Keys> {
        Ok(match &self.identity {
            IdentityChoice::Inline(key) => Keys::from_inline(key)?,
            IdentityChoice::File(path) => match load_identity_file(store, path)? {
                Some(keys) => keys,
                None => {
                    if let Some(recipient) = store.recipient()? {
                        return Err(MissingIdentity { path: path.clone(), store: store.location(), recipient }.into());
                    }
                    let keys = Keys::create(path)?;
                    eprintln!(
                        "wasm-host: created a new identity in {} (public key {}); back it up: without it the \
                         store's secrets cannot be read",
                        path.display(),
                        keys.recipient()
                    );
                    keys
                }
            },
        })
    }
}

/// Loads the identity file, first finishing a `store rekey` that was killed between its commit and the switch of
/// the identity file (see `wasm_host_store::finish_interrupted`).
fn load_identity_file(store: &Store, path: &std::path::Path) -> Result<Option<Keys>> {
    if let Some(recipient) = wasm_host_store::finish_interrupted(store, path)? {
        eprintln!(
            "wasm-host: finished an interrupted `store rekey`: {} now holds the store's identity ({recipient})",
            path.display()
        );
    }
    Ok(Keys::load(path)?)
}

/// The identity file is gone but the store holds secrets sealed to some identity.
#[derive(Debug)]
pub struct MissingIdentity {
    path: PathBuf,
    store: wasm_host_store::StoreLocation,
    recipient: String,
}

impl std::fmt::Display for MissingIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the identity file {} does not exist, but the store {} holds secrets encrypted to {}; pass the identity \
             it was created with or last rekeyed to (--identity, WASM_HOST_IDENTITY or WASM_HOST_IDENTITY_KEY)",
            self.path.display(),
            self.store,
            self.recipient
        )
    }
}

impl std::error::Error for MissingIdentity {}
