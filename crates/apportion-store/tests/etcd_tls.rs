//! `EtcdStore` against an etcd that serves clients over TLS only, requires client
//! certificates and (for some tests) has authentication enabled, as production etcd does.

use std::time::Duration;

use apportion_store::{ClientCert, EtcdOptions, EtcdStore, KeyRange, Store, StoreError, Tls};
use apportion_testkit::{TestCerts, TestEtcd};

/// TLS options trusting `certs`' CA and presenting their client certificate.
fn tls(certs: &TestCerts) -> Tls {
    Tls {
        ca_pem: TestCerts::read(&certs.ca_file()),
        client: Some(ClientCert {
            cert_pem: TestCerts::read(&certs.client_cert_file()),
            key_pem: TestCerts::read(&certs.client_key_file()),
        }),
    }
}

fn options(certs: &TestCerts, user: Option<(&str, &str)>) -> EtcdOptions {
    EtcdOptions {
        tls: Some(tls(certs)),
        user: user.map(|(name, password)| (name.to_string(), password.to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_reads_writes_watches_and_leases() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let store = EtcdStore::connect_with(&[etcd.endpoint()], options(&certs, None))
        .await
        .unwrap();
    let mut watch = store.watch(KeyRange::prefix("/t/"), 0).await.unwrap();
    let lease = store.grant(5).await.unwrap();
    let _keep = store.keep_alive(lease).await.unwrap();
    store
        .put("/t/a", b"1".to_vec(), Some(lease.id))
        .await
        .unwrap();
    let read = store.range(KeyRange::prefix("/t/")).await.unwrap();
    assert_eq!(read.kvs.len(), 1);
    let batch = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a watch event within 5 s")
        .expect("the watch is open")
        .unwrap();
    assert_eq!(batch.events[0].kv.key, b"/t/a");
    assert!(store.time_to_live(lease.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_without_a_ca_is_refused_at_once() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let err = EtcdStore::connect(&[etcd.endpoint()]).await.err().unwrap();
    assert!(
        matches!(err, StoreError::InvalidArgument(ref m) if m.contains("CA certificate")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_did_not_sign_etcd_is_an_auth_error() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let mut wrong = tls(&certs);
    wrong.ca_pem = TestCerts::read(&TestCerts::generate().ca_file());
    let options = EtcdOptions {
        tls: Some(wrong),
        user: None,
    };
    let store = EtcdStore::connect_with(&[etcd.endpoint()], options)
        .await
        .unwrap();
    let err = store.range(KeyRange::key("/x")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Auth(ref m) if m.contains("certificate")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_with_the_right_password_works_and_a_wrong_one_is_refused() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    etcd.enable_auth("s3cret").await;

    let store = EtcdStore::connect_with(
        &[etcd.endpoint()],
        options(&certs, Some(("root", "s3cret"))),
    )
    .await
    .unwrap();
    store.put("/a/k", b"v".to_vec(), None).await.unwrap();
    let lease = store.grant(5).await.unwrap();
    let _keep = store.keep_alive(lease).await.unwrap();
    assert_eq!(
        store.range(KeyRange::key("/a/k")).await.unwrap().kvs[0].value,
        b"v"
    );

    let wrong =
        EtcdStore::connect_with(&[etcd.endpoint()], options(&certs, Some(("root", "wrong"))))
            .await
            .unwrap();
    let err = wrong.range(KeyRange::key("/a/k")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Auth(ref m) if m.contains("authentication failed")),
        "{err:?}"
    );
    assert!(!err.is_transient());

    let anonymous = EtcdStore::connect_with(&[etcd.endpoint()], options(&certs, None))
        .await
        .unwrap();
    let err = anonymous.range(KeyRange::key("/a/k")).await.unwrap_err();
    assert!(matches!(err, StoreError::Auth(_)), "{err:?}");
}
