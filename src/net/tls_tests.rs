//! TLS over the ring, both ends in one executor: records larger than one receive and
//! batches of several buffers come through whole and in order, and a read dropped while it
//! waits (as a client's reader is when its hold ends) loses nothing.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use glommio::LocalExecutorBuilder;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use socket2::SockAddr;

use super::socket::{Listener, Stream};
use super::tls::{accept, connect};
use super::{spawn_driver, Uring};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A server configuration for 127.0.0.1 and a client configuration that trusts it.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(default_provider());
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], private)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Reads from `stream` until `buf` holds `len` bytes.
async fn read_exactly(stream: &Stream, buf: &mut BytesMut, len: usize) {
    while buf.len() < len {
        let read = stream.read_into(buf, 0, 4096).await.expect("read");
        assert!(read > 0, "closed after {} of {len} bytes", buf.len());
    }
}

#[test]
fn records_and_batches_come_through_whole_and_a_dropped_read_loses_nothing() {
    let (server, client) = configs();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let uring = Rc::new(Uring::new().expect("ring"));
            spawn_driver(uring.clone()).expect("driver").detach();
            let listener =
                Listener::bind_one("127.0.0.1:0".parse().unwrap(), uring.clone()).unwrap();
            let addr = listener.local_addr().unwrap();
            // 100 KB: several 16 KiB records, each more than one 4 KiB read of the buffer.
            let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let expected = payload.clone();
            let echo = glommio::spawn_local(async move {
                let stream = listener.accept().await.unwrap();
                let stream = accept(stream, &server, TIMEOUT).await.expect("handshake");
                let mut buf = BytesMut::new();
                read_exactly(&stream, &mut buf, expected.len()).await;
                assert_eq!(&buf[..], &expected[..]);
                // Back as one batch of three buffers, as the writers send.
                let (a, rest) = buf.split_at(10);
                let (b, c) = rest.split_at(50_000);
                let iovecs: Vec<libc::iovec> = [a, b, c]
                    .iter()
                    .map(|part| libc::iovec {
                        iov_base: part.as_ptr() as *mut libc::c_void,
                        iov_len: part.len(),
                    })
                    .collect();
                let sent = stream.send_iovecs(&iovecs).await.unwrap();
                assert_eq!(sent, buf.len());
                // Hold the connection until the client has read it all.
                let mut end = BytesMut::new();
                let _ = stream.read_into(&mut end, 0, 64).await;
            });
            let stream = Stream::connect(&uring, SockAddr::from(addr), TIMEOUT)
                .await
                .unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let stream = connect(stream, &client, name, TIMEOUT)
                .await
                .expect("handshake");
            let mut buf = BytesMut::new();
            {
                // Nothing has come yet: the read waits, and is dropped while it does.
                let mut pending = Box::pin(stream.read_into(&mut buf, 0, 4096));
                let polled = futures_lite::future::poll_once(&mut pending).await;
                assert!(polled.is_none(), "nothing to read yet");
            }
            stream.write_all(&payload).await.unwrap();
            read_exactly(&stream, &mut buf, payload.len()).await;
            assert_eq!(&buf[..], &payload[..]);
            drop(stream);
            echo.await;
        })
        .expect("executor")
        .join()
        .expect("executor ran");
}
