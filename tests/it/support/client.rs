//! A minimal HTTP/1 client for the tests (hyper), speaking JSON to the server.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    key: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub enum Auth<'a> {
    Admin,
    None,
    Bearer(&'a str),
}

impl Api {
    pub fn new(addr: SocketAddr, key: &str) -> Api {
        Api {
            addr,
            key: key.to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: Auth<'_>,
    ) -> Reply {
        self.try_raw(method, path, body, auth)
            .await
            .unwrap_or_else(|e| panic!("http request: {e}"))
    }

    /// As [`Api::raw`], but a transport failure (the server died mid-request) is returned
    /// rather than a panic: the answer to such a request is unknown.
    pub async fn try_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: Auth<'_>,
    ) -> Result<Reply, String> {
        let mut builder = Request::builder().method(method).uri(self.url(path));
        match auth {
            Auth::Admin => builder = builder.header(AUTHORIZATION, format!("Bearer {}", self.key)),
            Auth::Bearer(token) => {
                builder = builder.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            Auth::None => {}
        }
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// An admin request whose transport failure is returned (see [`Api::try_raw`]).
    pub async fn try_admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, String> {
        self.try_raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            Auth::Admin,
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            Auth::Admin,
        )
        .await
    }

    pub async fn as_tenant(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            Auth::Bearer(token),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.admin(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Option<Value>) -> Reply {
        self.admin(Method::PUT, path, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.admin(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.admin(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.admin(Method::DELETE, path, None).await
    }

    /// Creates a tenant and returns a JWT for it.
    pub async fn tenant_with_token(&self, id: &str) -> String {
        let r = self.put(&format!("/api/v1/tenants/{id}"), None).await;
        assert!(r.status.is_success(), "{}", r.text());
        let r = self.get(&format!("/api/v1/tenants/{id}/token")).await;
        r.json()["token"].as_str().expect("token").to_string()
    }
}
