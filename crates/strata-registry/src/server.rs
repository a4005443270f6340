//! The long-running server: the tokio runtime (created here and only here), the listener,
//! TLS, the collector's schedule and a graceful shutdown on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::Auth;
use crate::config::Config;
use crate::error::RegistryError;
use crate::http::{serve_request, App, RateLimiter};
use crate::mirror::Upstreams;
use crate::quota::Quotas;
use crate::registry::{Limits, Registry};
use crate::storage::{FsStorage, S3Storage};
use crate::tls::{self, ReloadingCert};

/// A bound, not yet running server.
pub struct Server {
    listener: std::net::TcpListener,
    app: Arc<App>,
    tls: Option<(TlsAcceptor, Arc<ReloadingCert>)>,
    config: Config,
    /// Held for the server's life: one server per storage directory (none on S3, where
    /// replicas share the bucket by design).
    _serve_lock: Option<std::fs::File>,
}

/// The opened storage: the filesystem one keeps its type for the serve lock.
pub(crate) enum Opened {
    Fs(Arc<FsStorage>),
    S3,
}

/// Opens the storage and the registry over it (also used by `strata registry gc`).
pub(crate) fn open_registry(config: &Config) -> Result<(Arc<Registry>, Opened), RegistryError> {
    let (storage, opened): (Arc<dyn crate::Storage>, Opened) = match &config.s3 {
        Some(s3) => (Arc::new(S3Storage::open(s3)?), Opened::S3),
        None => {
            let fs = Arc::new(FsStorage::open(&config.storage)?);
            (fs.clone(), Opened::Fs(fs))
        }
    };
    let registry = Arc::new(Registry::new(
        storage,
        Limits {
            max_manifest_size: config.limits.max_manifest_size.0,
        },
        Quotas::new(&config.quotas),
    ));
    Ok((registry, opened))
}

impl Server {
    /// Opens the storage, loads keys and certificates and binds the address.
    pub fn bind(config: &Config) -> Result<Server, RegistryError> {
        if config.tls.is_none() && !config.addr.ip().is_loopback() && !config.http.plain_http {
            return Err(RegistryError::PlainHttpRefused(config.addr));
        }
        let (registry, opened) = open_registry(config)?;
        let serve_lock = match opened {
            Opened::Fs(storage) => Some(
                storage
                    .lock_for_serving()?
                    .ok_or_else(|| RegistryError::StorageBusy(config.storage.clone()))?,
            ),
            Opened::S3 => None,
        };
        let auth = Auth::new(config, &config.storage)?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let limiter = (config.limits.requests_per_second > 0)
            .then(|| RateLimiter::new(config.limits.requests_per_second, config.limits.burst));
        let upstreams = Upstreams::from_config(&config.mirrors)?;
        let app = Arc::new(App::new(registry, auth, tls.is_some(), limiter, upstreams));
        let listener =
            std::net::TcpListener::bind(config.addr).map_err(|source| RegistryError::Bind {
                addr: config.addr,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| RegistryError::Bind {
                addr: config.addr,
                source,
            })?;
        Ok(Server {
            listener,
            app,
            tls,
            config: config.clone(),
            _serve_lock: serve_lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.addr)
    }

    /// Runs until SIGTERM or SIGINT, on a runtime of its own.
    pub fn run(self) -> Result<(), RegistryError> {
        let workers = match self.config.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(64)
            .thread_name("registry")
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        rt.block_on(self.run_until(shutdown_signal()))
    }

    /// Serves until `shutdown` completes, inside the caller's runtime.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), RegistryError> {
        let addr = self.local_addr();
        let listener = TcpListener::from_std(self.listener)
            .map_err(|source| RegistryError::Bind { addr, source })?;
        // Fail now, not at the first push, when the bucket or its credentials are wrong.
        self.app.registry.storage().check().await?;
        tracing::info!(
            %addr,
            tls = self.tls.is_some(),
            auth = ?self.app.auth.mode(),
            storage = %self.app.registry.storage().describe(),
            "registry listening"
        );
        let background = crate::gc::spawn_schedule(self.app.registry.clone(), &self.config);
        let tls = self.tls.map(|(acceptor, resolver)| {
            let every = self
                .config
                .tls
                .as_ref()
                .map(|t| t.reload_interval.0)
                .unwrap_or_default();
            if !every.is_zero() {
                let r = resolver.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        let r = r.clone();
                        let _ = tokio::task::spawn_blocking(move || r.reload_if_changed()).await;
                    }
                });
            }
            acceptor
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let tls = tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let service = service_fn(move |req| serve_request(app.clone(), req, peer));
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .keep_alive(true);
                let result = match tls {
                    Some(acceptor) => {
                        let accepted =
                            tokio::time::timeout(Duration::from_secs(15), acceptor.accept(stream))
                                .await;
                        match accepted {
                            Ok(Ok(s)) => {
                                let conn = builder.serve_connection(TokioIo::new(s), service);
                                watcher.watch(conn).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "tls handshake failed");
                                return;
                            }
                            Err(_) => return,
                        }
                    }
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        tracing::info!("shutting down: waiting for requests in flight");
        drop(listener);
        background.abort();
        let grace = self.config.http.shutdown_grace.0;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after {grace:?}, closing them");
        }
        self.app.registry.storage().close().await;
        Ok(())
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
