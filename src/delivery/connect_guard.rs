//! Enforces the outbound address policy where delivery connections are made.
//!
//! Every TCP connection of the delivery client goes through [`GuardedConnector`]: a host name
//! is resolved by [`GuardedResolver`] (the `DELIVERY_RESOLVE_OVERRIDES` table first, else the
//! system resolver), which drops the denied addresses and fails with [`AddressDenied`] when none
//! is left; an IP-literal host, which hyper-util's `HttpConnector` never hands to a resolver, is
//! checked by the connector itself before connecting. Both run per connection, so the check
//! happens at delivery time (not when a destination is saved), for the first request, for each
//! redirect hop and for the native-roots retry alike. A pooled keep-alive connection is reused
//! without a new check: its address was checked when it was opened.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::address_policy::{AddressDenied, AddressPolicy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Host names answered from configuration instead of DNS (`DELIVERY_RESOLVE_OVERRIDES`):
/// `name=ip` pairs, a name listed more than once has several addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolveOverrides(HashMap<String, Vec<IpAddr>>);

/// Why `DELIVERY_RESOLVE_OVERRIDES` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not name=ip")]
pub struct OverrideError {
    pub entry: String,
}

impl ResolveOverrides {
    /// Parses `name=ip,name=ip`; empty items are skipped, names are case-insensitive.
    pub fn parse(text: &str) -> Result<ResolveOverrides, OverrideError> {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
            let error = || OverrideError {
                entry: entry.trim().to_string(),
            };
            let (name, ip) = entry.split_once('=').ok_or_else(error)?;
            let name = name.trim().to_ascii_lowercase();
            let ip: IpAddr = ip.trim().parse().map_err(|_| error())?;
            if name.is_empty() {
                return Err(error());
            }
            table.entry(name).or_default().push(ip);
        }
        Ok(ResolveOverrides(table))
    }

    fn get(&self, host: &str) -> Option<&[IpAddr]> {
        self.0
            .get(&host.trim_end_matches('.').to_ascii_lowercase())
            .map(Vec::as_slice)
    }
}

/// What the delivery client may connect to and how it resolves names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    pub policy: AddressPolicy,
    pub resolve_overrides: ResolveOverrides,
}

impl Outbound {
    /// No address refused, names resolved by the system only.
    pub fn unrestricted() -> Outbound {
        Outbound {
            policy: AddressPolicy::unrestricted(),
            resolve_overrides: ResolveOverrides::default(),
        }
    }

    /// The permitted addresses among `addrs`; [`AddressDenied`] (for the first) when every one
    /// is denied.
    fn permitted(&self, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, AddressDenied> {
        let mut first_denied = None;
        let mut kept = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match self.policy.check(addr.ip()) {
                Ok(()) => kept.push(addr),
                Err(denied) => {
                    first_denied.get_or_insert(denied);
                }
            }
        }
        match first_denied {
            Some(denied) if kept.is_empty() => Err(denied),
            _ => Ok(kept),
        }
    }
}

/// Resolves host names (overrides, else `getaddrinfo`) and keeps only permitted addresses.
#[derive(Clone)]
pub struct GuardedResolver {
    outbound: Arc<Outbound>,
    system: GaiResolver,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = BoxFuture<Result<Self::Response, io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let outbound = self.outbound.clone();
        let overridden: Option<Vec<SocketAddr>> = outbound
            .resolve_overrides
            .get(name.as_str())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        let lookup = overridden.is_none().then(|| self.system.call(name));
        Box::pin(async move {
            let addrs = match (overridden, lookup) {
                (Some(addrs), _) => addrs,
                (None, Some(lookup)) => lookup.await?.collect(),
                (None, None) => Vec::new(),
            };
            outbound
                .permitted(addrs)
                .map(Vec::into_iter)
                .map_err(|denied| io::Error::new(io::ErrorKind::PermissionDenied, denied))
        })
    }
}

/// hyper-util's TCP connector with the policy applied to IP-literal hosts (names are checked
/// by its [`GuardedResolver`]).
#[derive(Clone)]
pub struct GuardedConnector {
    inner: HttpConnector<GuardedResolver>,
    outbound: Arc<Outbound>,
}

impl GuardedConnector {
    /// A connector resolving and checking through `outbound`; `configure` sets the TCP options.
    pub fn new(
        outbound: Arc<Outbound>,
        configure: impl FnOnce(&mut HttpConnector<GuardedResolver>),
    ) -> GuardedConnector {
        let mut inner = HttpConnector::new_with_resolver(GuardedResolver {
            outbound: outbound.clone(),
            system: GaiResolver::new(),
        });
        configure(&mut inner);
        GuardedConnector { inner, outbound }
    }
}

/// The IP address of an IP-literal host (`10.0.0.1`, `[::1]`).
fn literal_ip(uri: &Uri) -> Option<IpAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

impl Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Some(ip) = literal_ip(&uri) {
            if let Err(denied) = self.outbound.policy.check(ip) {
                return Box::pin(std::future::ready(Err(denied.into())));
            }
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::address_policy::Cidr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_overrides() {
        let table =
            ResolveOverrides::parse(" Hook.Example=10.0.0.1, hook.example=::1,,other=127.0.0.2")
                .unwrap();
        assert_eq!(
            table.get("hook.example."),
            Some(&[ip("10.0.0.1"), ip("::1")][..])
        );
        assert_eq!(table.get("OTHER"), Some(&[ip("127.0.0.2")][..]));
        assert_eq!(table.get("missing"), None);
        for bad in ["name", "=1.2.3.4", "name=host", "a=1.2.3.4,b"] {
            assert!(ResolveOverrides::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_hosts_are_found() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(literal_ip(&uri("http://[::1]:8080/x")), Some(ip("::1")));
        assert_eq!(
            literal_ip(&uri("https://169.254.169.254/")),
            Some(ip("169.254.169.254"))
        );
        assert_eq!(literal_ip(&uri("http://example.com/")), None);
    }

    #[test]
    fn denied_addresses_are_dropped_and_all_denied_fails() {
        let outbound = Outbound {
            policy: AddressPolicy::new(Cidr::parse_list("127.0.0.2").unwrap(), Vec::new()),
            resolve_overrides: ResolveOverrides::default(),
        };
        let addr = |s: &str| SocketAddr::new(ip(s), 80);
        assert_eq!(
            outbound.permitted(vec![addr("127.0.0.2"), addr("127.0.0.1")]),
            Ok(vec![addr("127.0.0.1")])
        );
        assert_eq!(
            outbound.permitted(vec![addr("127.0.0.2")]),
            Err(AddressDenied {
                address: ip("127.0.0.2")
            })
        );
        assert_eq!(outbound.permitted(Vec::new()), Ok(Vec::new()));
    }

    #[tokio::test]
    async fn connector_refuses_denied_literals_and_names() {
        let outbound = Arc::new(Outbound {
            policy: AddressPolicy::new(Cidr::parse_list("127.0.0.2").unwrap(), Vec::new()),
            resolve_overrides: ResolveOverrides::parse("denied.test=127.0.0.2").unwrap(),
        });
        let mut connector = GuardedConnector::new(outbound, |_| {});
        let err = connector
            .call("http://127.0.0.2:9/".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<AddressDenied>().is_some(), "{err}");
        let err = connector
            .call("http://denied.test:9/".parse().unwrap())
            .await
            .unwrap_err();
        let text = format!("{:?}", err);
        assert!(text.contains("127.0.0.2"), "{text}");
    }
}
