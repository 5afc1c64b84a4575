//! How to reach a secured etcd: TLS and a user.
//!
//! Production clusters serve clients over TLS (often requiring a client certificate) and
//! often with authentication enabled. The options are given once, to
//! [`EtcdStore::connect_with`](super::EtcdStore::connect_with), and reach every connection
//! the store opens: each endpoint has two (key-value and leases, see [`super::endpoints`]),
//! and each must verify the server and authenticate the same way.

use std::fmt;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

/// How an [`EtcdStore`](super::EtcdStore) proves who it talks to, and who it is. The
/// default, no TLS and no user, suits a development etcd on `http://` URLs.
#[derive(Clone, Default)]
pub struct EtcdOptions {
    /// TLS for `https://` endpoints; required with them (and refused with `http://` ones),
    /// as etcd's certificates are signed by a private CA the store must be given.
    pub tls: Option<Tls>,
    /// User name and password, for a cluster with authentication enabled. Each connection
    /// authenticates when first used and again when its token expires or etcd restarts.
    pub user: Option<(String, String)>,
}

/// The certificates of a TLS connection to etcd, in PEM.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The CA certificate(s) etcd's server certificate must be signed by: the store trusts
    /// only these, not the system's roots, since etcd runs with a private CA.
    pub ca_pem: Vec<u8>,
    /// A client certificate and key, for an etcd that requires them
    /// (`--client-cert-auth`).
    pub client: Option<ClientCert>,
}

/// A client certificate and its private key, in PEM.
#[derive(Clone)]
pub struct ClientCert {
    /// The certificate (chain) presented to etcd.
    pub cert_pem: Vec<u8>,
    /// Its private key.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for EtcdOptions {
    /// Shows everything but the password, so options can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .finish()
    }
}

impl fmt::Debug for ClientCert {
    /// Leaves the private key out, so options can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert").finish_non_exhaustive()
    }
}

impl EtcdOptions {
    /// etcd-client's options for one connection: `base` with this TLS and user added.
    pub(super) fn apply(&self, mut base: ConnectOptions) -> ConnectOptions {
        if let Some(tls) = &self.tls {
            let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some(client) = &tls.client {
                config = config.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
            }
            base = base.with_tls(config);
        }
        if let Some((name, password)) = &self.user {
            // Tokens expire (etcd's --auth-token-ttl) and die with a restart of etcd; a
            // long-running member must authenticate again then instead of failing.
            base = base
                .with_user(name.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        base
    }
}
