//! The few management calls the bench makes before it loads the server: a health check,
//! creating the tenant and its webhook destinations. One short-lived HTTP/1.1 connection per
//! call; also validates `--url` targets (http, loopback only).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Api {
    pub addr: SocketAddr,
    pub key: String,
}

/// Resolves an `http://host:port` URL to a loopback socket address.
pub async fn loopback_target(url: &str) -> Result<SocketAddr, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--url {url:?}: only http:// URLs are supported (the bench talks to loopback)")
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("--url {url:?}: missing host"));
    }
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("--url {url:?}: cannot resolve {authority}: {e}"))?
        .collect();
    addrs
        .iter()
        .copied()
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| {
            format!("--url {url:?}: not a loopback address (the bench only targets 127.0.0.1/::1)")
        })
}

impl Api {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), String> {
        tokio::time::timeout(CALL_TIMEOUT, self.call_inner(method.clone(), path, body))
            .await
            .map_err(|_| format!("{method} {path}: no answer within {CALL_TIMEOUT:?}"))?
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), String> {
        let what = format!("{method} {path}");
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("{what}: cannot connect to {}: {e}", self.addr))?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("{what}: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{what}: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub async fn check_health(&self) -> Result<(), String> {
        match self.call(Method::GET, "/healthz", None).await? {
            (200, _) => Ok(()),
            (status, body) => Err(format!("GET /healthz answered {status}: {body}")),
        }
    }

    pub async fn create_tenant(&self, tenant: &str) -> Result<(), String> {
        match self
            .call(Method::PUT, &format!("/api/v1/tenants/{tenant}"), None)
            .await?
        {
            (200 | 201, _) => Ok(()),
            (401, _) => Err("the server refused the API key (401); pass --api-key".into()),
            (status, body) => Err(format!("creating tenant {tenant}: {status} {body}")),
        }
    }

    /// A webhook destination for every topic; answers its id.
    pub async fn create_destination(&self, tenant: &str, url: &str) -> Result<String, String> {
        let body = serde_json::json!({
            "type": "webhook",
            "topics": ["*"],
            "config": {"url": url},
        });
        let (status, text) = self
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/destinations"),
                Some(body.to_string()),
            )
            .await?;
        if status != 201 && status != 200 {
            return Err(format!("creating a destination: {status} {text}"));
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("creating a destination: bad answer {text:?}: {e}"))?;
        Ok(value
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string())
    }
}
