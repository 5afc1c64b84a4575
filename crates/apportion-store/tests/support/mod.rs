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

use std::future::Future;

use apportion_store::{
    KeepAlive, KeyRange, Lease, LeaseId, RangeOptions, RangeResult, Result, Revision, Store, Txn,
    TxnResult, Watch,
};

/// What a [`Hooked`] store does before some of its calls; by default, nothing.
pub trait Hook<S>: Clone + Send + Sync + 'static {
    /// Runs before each read, given the store and the read's options.
    fn before_read(&self, _store: &S, _options: &RangeOptions) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Runs before each watch is opened.
    fn before_watch(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A store that forwards every call to `inner`, running its hook first where the hook says:
/// lets a test make something happen at an exact point of what a caller does (between two
/// pages of a read, between a load and its watch), deterministically, on either backend.
#[derive(Clone)]
pub struct Hooked<S, H> {
    /// The store the calls go to.
    pub inner: S,
    /// What happens before them.
    pub hook: H,
}

impl<S: Store, H: Hook<S>> Store for Hooked<S, H> {
    async fn range_with(&self, range: KeyRange, options: RangeOptions) -> Result<RangeResult> {
        self.hook.before_read(&self.inner, &options).await;
        self.inner.range_with(range, options).await
    }
    async fn revision(&self) -> Result<Revision> {
        self.inner.revision().await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.inner.txn(txn).await
    }
    async fn watch(&self, range: KeyRange, from: Revision) -> Result<Watch> {
        self.hook.before_watch().await;
        self.inner.watch(range, from).await
    }
    async fn grant(&self, ttl_secs: i64) -> Result<Lease> {
        self.inner.grant(ttl_secs).await
    }
    async fn keep_alive(&self, lease: Lease) -> Result<KeepAlive> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke(&self, lease: LeaseId) -> Result<()> {
        self.inner.revoke(lease).await
    }
    async fn time_to_live(&self, lease: LeaseId) -> Result<Option<std::time::Duration>> {
        self.inner.time_to_live(lease).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops()
    }
    fn max_response_bytes(&self) -> usize {
        self.inner.max_response_bytes()
    }
}
