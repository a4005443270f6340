//! An in-process S3-compatible server for tests (feature `test-s3-server`): `s3s-fs` (objects
//! as files under a temp dir) behind SigV4 authentication, on a loopback port, with a runtime
//! of its own so synchronous tests can use it too; optionally over TLS. Not part of the
//! shipped binary.

use std::net::SocketAddr;
use std::path::Path;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;

pub const ACCESS_KEY: &str = "strata-test-key";
pub const SECRET_KEY: &str = "strata-test-secret";
pub const REGION: &str = "us-east-1";

/// A running server; stops when dropped.
pub struct TestS3 {
    addr: SocketAddr,
    https: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestS3 {
    /// Serves the directory `root` (buckets are its subdirectories; `bucket` is created).
    pub fn start(root: &Path, bucket: &str) -> TestS3 {
        TestS3::serve(root, bucket, None)
    }

    /// The same over TLS with the PEM certificate chain and key given (`https://` endpoint).
    pub fn start_tls(root: &Path, bucket: &str, cert: &Path, key: &Path) -> TestS3 {
        let tls = crate::config::TlsConfig {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reload_interval: crate::Dur(std::time::Duration::ZERO),
        };
        let (acceptor, _) = crate::tls::acceptor(&tls).expect("test S3 certificate");
        TestS3::serve(root, bucket, Some(acceptor))
    }

    fn serve(root: &Path, bucket: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> TestS3 {
        std::fs::create_dir_all(root.join(bucket)).expect("create the test bucket");
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind test S3");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let tls_on = tls.is_some();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test S3 runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("test S3 listener");
                loop {
                    let (stream, _) = tokio::select! {
                        a = listener.accept() => match a {
                            Ok(a) => a,
                            Err(_) => continue,
                        },
                        _ = &mut stopped => break,
                    };
                    let service = service.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let http = http1::Builder::new();
                        let _ = match tls {
                            Some(tls) => match tls.accept(stream).await {
                                Ok(stream) => {
                                    http.serve_connection(TokioIo::new(stream), service).await
                                }
                                Err(_) => return,
                            },
                            None => http.serve_connection(TokioIo::new(stream), service).await,
                        };
                    });
                }
            });
        });
        TestS3 {
            addr,
            https: tls_on,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS)
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The registry config section for this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "[s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nregion = \"{REGION}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint()
        )
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
