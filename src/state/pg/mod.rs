//! [`PgStateStore`] (feature `postgres`): the sync state of many organisations in one
//! PostgreSQL database, as rows written change by change. The design, with its
//! figures, is in `docs/service.md`.

mod changes;
pub(crate) mod error;
mod lock;
mod pipeline;
mod rows;
mod schema;
mod settled;

pub use schema::SCHEMA_VERSION;

use crate::error::{Error, Result};
use crate::state::{Settled, StateChange, StateLock, StateStore, SyncState};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rows::Scope;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Connections a [`PgDatabase`] keeps open at most, unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// One PostgreSQL database holding the sync state of any number of organisations:
/// a pool of connections, shared by every [`PgStateStore`] made from it. Cheap to
/// clone. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct PgDatabase {
    inner: Arc<Database>,
}

struct Database {
    pool: Pool,
    /// Connections that hold organisations' locks, apart from the others: a held lock
    /// keeps its connection out of the pool until it is released.
    locks: Pool,
    releasing: lock::Releasing,
    held: lock::Held,
    config: tokio_postgres::Config,
}

impl PgDatabase {
    /// Connects to the database at `url` (`postgresql://user:password@host:port/db`,
    /// or `key=value` pairs; `sslmode=require` for TLS, checked against the web's
    /// root certificates) and brings its schema up to this release's, or refuses a
    /// schema newer than it ([`Error::State`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// [`connect`](Self::connect), with at most `pool_size` connections open for reads
    /// and writes; the organisations' locks use connections of their own (one per lock
    /// held, up to four times `pool_size`).
    pub async fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<Self> {
        // The parser's message may quote the string, password included: not shown.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            Error::Config(
                "the PostgreSQL connection string cannot be read: write it as \
                 postgresql://user:password@host:port/database or as key=value pairs"
                    .to_owned(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let tls = MakeRustlsConnect::new(tls_config()?);
        let pool = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                tls.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(60)))
                .create_timeout(Some(Duration::from_secs(15)))
                .build()
                .map_err(|e| Error::Config(format!("the PostgreSQL connection pool: {e}")))
        };
        let database = Self {
            inner: Arc::new(Database {
                pool: pool(pool_size)?,
                // A worker holds at most as many locks as it runs syncs at once.
                locks: pool(pool_size.saturating_mul(4))?,
                releasing: lock::Releasing::default(),
                held: lock::Held::default(),
                config,
            }),
        };
        let mut client = database.client("migrating the schema").await?;
        schema::migrate(&mut client, database.password()).await?;
        Ok(database)
    }

    /// The store of one organisation's state. `organisation` is the service's own id
    /// for it (any text); organisations never see each other's rows.
    pub fn store(&self, organisation: impl Into<String>) -> PgStateStore {
        PgStateStore {
            database: self.clone(),
            organisation: organisation.into(),
        }
    }

    pub(crate) fn password(&self) -> Option<&[u8]> {
        self.inner.config.get_password()
    }

    pub(crate) async fn client(&self, operation: &str) -> Result<deadpool_postgres::Client> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| error::from_pool(operation, &e, self.password()))
    }
}

fn tls_config() -> Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        f.debug_struct("PgDatabase")
            .field("hosts", &hosts)
            .field("ports", &config.get_ports())
            .field("dbname", &config.get_dbname())
            .field("user", &config.get_user())
            .field("password", &config.get_password().map(|_| "[redacted]"))
            .finish()
    }
}

/// The sync state of one organisation in a [`PgDatabase`].
///
/// - `load` reads the organisation's rows in one repeatable-read transaction (one
///   round trip for all its tables);
/// - `record` writes each change as rows in one transaction per call: what a change
///   touches, nothing more (see `docs/service.md`);
/// - `save` replaces the organisation's rows in one transaction;
/// - `checkpoint` does nothing: the rows are the state, there is no journal to fold;
/// - `load_settled` and `save_settled` keep a quiet day's summary in one row, valid
///   only while the organisation's rows are at the generation it names (every write
///   transaction moves it on);
/// - `lock` is a session advisory lock on a connection of its own, released by
///   PostgreSQL when that connection ends, the holder's death included; should that
///   connection end while the holder runs on (a server restart), `record` and `save`
///   take the lock again before writing, or fail.
pub struct PgStateStore {
    database: PgDatabase,
    organisation: String,
}

impl PgStateStore {
    /// The organisation this store serves.
    pub fn organisation(&self) -> &str {
        &self.organisation
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            org: &self.organisation,
            password: self.database.password(),
        }
    }
}

impl fmt::Debug for PgStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStateStore")
            .field("organisation", &self.organisation)
            .field("database", &self.database)
            .finish()
    }
}

/// A pooled connection that goes back to the pool only once its work succeeded: after
/// a failure, or when the future using it is dropped midway (a transaction may be
/// open), it is closed instead, and the server rolls back what was not committed.
struct Checkout {
    client: Option<deadpool_postgres::Client>,
}

impl Checkout {
    fn done(mut self) {
        // Back to the pool, clean.
        drop(self.client.take());
    }
}

impl std::ops::Deref for Checkout {
    type Target = deadpool_postgres::ClientWrapper;
    fn deref(&self) -> &Self::Target {
        // Present until `done` or drop, which both consume it.
        self.client.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl PgStateStore {
    fn locks(&self) -> lock::Locks<'_> {
        let inner = &self.database.inner;
        lock::Locks {
            pool: &inner.locks,
            password: self.database.password(),
            releasing: &inner.releasing,
            held: &inner.held,
        }
    }

    async fn checkout(&self, operation: &str) -> Result<Checkout> {
        Ok(Checkout {
            client: Some(self.database.client(operation).await?),
        })
    }
}

#[async_trait]
impl StateStore for PgStateStore {
    async fn load(&self) -> Result<Option<SyncState>> {
        let client = self.checkout("reading the sync state").await?;
        let state = rows::load(&client, self.scope()).await?;
        client.done();
        Ok(state)
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        let scope = self.scope();
        let mut steps = vec![pipeline::Step::Simple("BEGIN")];
        steps.extend(rows::save(scope, state)?);
        steps.push(pipeline::Step::Simple("COMMIT"));
        lock::ensure_held(self.locks(), &self.organisation).await?;
        let client = self.checkout("saving the sync state").await?;
        let operation = format!("saving the sync state (organisation {:?})", scope.org);
        pipeline::run(&client, &operation, scope.password, &steps).await?;
        client.done();
        Ok(())
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        lock::ensure_held(self.locks(), &self.organisation).await?;
        let client = self.checkout("recording sync progress").await?;
        changes::record(&client, self.scope(), changes).await?;
        client.done();
        Ok(())
    }

    /// Nothing to do: each change was written into the rows it changes, so the rows
    /// already are the state `load` returns; there is no journal to fold.
    async fn checkpoint(&self, _state: &SyncState) -> Result<()> {
        Ok(())
    }

    async fn load_settled(&self) -> Result<Option<Settled>> {
        let client = self.checkout("reading the settled summary").await?;
        let settled = settled::load(&client, self.scope()).await?;
        client.done();
        Ok(settled)
    }

    async fn save_settled(&self, summary: &Settled) -> Result<()> {
        // Written under the lock, as the rows it describes: nobody moves them meanwhile.
        lock::ensure_held(self.locks(), &self.organisation).await?;
        let client = self.checkout("saving the settled summary").await?;
        settled::save(&client, self.scope(), summary).await?;
        client.done();
        Ok(())
    }

    async fn lock(&self) -> Result<StateLock> {
        lock::acquire(self.locks(), &self.organisation).await
    }
}
