//! What the store's integration tests share: running one set of cases on both backends.

/// Instantiates each named case (an `async fn case<S: Store>(store: S)` in module `$cases`)
/// twice: `memory::case` on a `MemoryStore` with paused tokio time, and `etcd::case` on an
/// `EtcdStore` connected to a real etcd started for that test.
#[macro_export]
macro_rules! on_both_backends {
    ($cases:path => $($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $case() {
                    use $cases as cases;
                    cases::$case(apportion_store::MemoryStore::new()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    use $cases as cases;
                    let etcd = apportion_testkit::TestEtcd::start();
                    let store = apportion_store::EtcdStore::connect(&[etcd.endpoint()])
                        .await
                        .unwrap();
                    cases::$case(store).await;
                }
            )*
        }
    };
}
