//! Loopback stand-ins for the credential endpoints moto cannot play: a strict IMDSv2, a
//! container credentials endpoint that checks its authorization token, and an STS that
//! answers `AssumeRoleWithWebIdentity` unsigned (as AWS does; moto with authentication
//! enforced refuses unsigned calls). Each speaks the documented wire format and answers a
//! client that does the wrong thing with the error AWS would give, so the test fails.
//!
//! Shared by the unit tests of `src/credentials` (through `#[path]`) and the end-to-end tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};

/// One request as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Recorded {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What to answer.
pub enum Reply {
    /// Status, headers, body.
    Answer(u16, Vec<(&'static str, String)>, String),
    /// Never answer (the connection stays open).
    Hang,
}

/// Shorthand for an answer without extra headers.
pub fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply::Answer(status, Vec::new(), body.into())
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A running stand-in; it stops when the test's runtime ends.
pub struct StandIn {
    pub url: String,
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Recorded>>>,
}

impl StandIn {
    /// Serves `handler` on a free loopback port.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> StandIn {
        let handler: Handler = Arc::new(handler);
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (h2, hits2) = (Arc::clone(&handler), Arc::clone(&hits));
        let make = make_service_fn(move |_| {
            let (handler, hits) = (Arc::clone(&h2), Arc::clone(&hits2));
            async move {
                Ok::<_, Infallible>(service_fn(move |req: Request<Body>| {
                    let (handler, hits) = (Arc::clone(&handler), Arc::clone(&hits));
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = hyper::body::to_bytes(body).await.unwrap_or_default();
                        let rec = Recorded {
                            method: parts.method.to_string(),
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        hits.lock().unwrap().push(rec.clone());
                        match handler(&rec) {
                            Reply::Answer(status, headers, body) => {
                                let mut resp = Response::builder().status(status);
                                for (k, v) in headers {
                                    resp = resp.header(k, v);
                                }
                                Ok::<_, Infallible>(resp.body(Body::from(body)).unwrap())
                            }
                            Reply::Hang => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                Ok(Response::new(Body::empty()))
                            }
                        }
                    }
                }))
            }
        });
        let server = Server::bind(&SocketAddr::from(([127, 0, 0, 1], 0))).serve(make);
        let addr = server.local_addr();
        tokio::spawn(server);
        StandIn {
            url: format!("http://{addr}"),
            addr,
            hits,
        }
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Recorded> {
        self.hits.lock().unwrap().clone()
    }
}

/// Credentials a stand-in hands out.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
    /// RFC 3339.
    pub expiration: String,
}

impl Creds {
    /// Credentials expiring `secs` from now.
    pub fn expiring_in(id: &str, secret: &str, token: Option<&str>, secs: i64) -> Creds {
        Creds {
            id: id.into(),
            secret: secret.into(),
            token: token.map(Into::into),
            expiration: (chrono::Utc::now() + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// The JSON of the container endpoint and of IMDS.
    pub fn json(&self) -> String {
        serde_json::json!({
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": self.id,
            "SecretAccessKey": self.secret,
            "Token": self.token,
            "Expiration": self.expiration,
        })
        .to_string()
    }

    /// STS's `AssumeRoleWithWebIdentityResponse`.
    pub fn web_identity_xml(&self, role: &str, session: &str) -> String {
        format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <AssumeRoleWithWebIdentityResult><Credentials>\
             <AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:{session}</AssumedRoleId>\
             <Arn>arn:aws:sts::123456789012:assumed-role/{role}/{session}</Arn></AssumedRoleUser>\
             </AssumeRoleWithWebIdentityResult>\
             <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\
             </AssumeRoleWithWebIdentityResponse>",
            self.id,
            self.secret,
            self.token.as_deref().unwrap_or(""),
            self.expiration
        )
    }
}

/// STS's `ErrorResponse`.
pub fn sts_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
         <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    )
}

pub type CredsFn = Arc<dyn Fn() -> Creds + Send + Sync>;

/// A strict IMDSv2: `PUT /latest/api/token` needs a TTL header of 1–21600 s (else 400) and
/// answers a fresh token echoing the TTL; every GET needs the current token (else 401). The
/// role list names `role`; the role path answers `creds()`.
pub fn imds(role: &'static str, creds: CredsFn) -> StandIn {
    let current: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let counter = Arc::new(Mutex::new(0u32));
    StandIn::start(move |r| {
        if r.path == "/latest/api/token" {
            if r.method != "PUT" {
                return reply(405, "");
            }
            let ttl = r
                .header("x-aws-ec2-metadata-token-ttl-seconds")
                .and_then(|v| v.parse::<u64>().ok());
            let Some(ttl) = ttl.filter(|t| (1..=21600).contains(t)) else {
                return reply(400, "missing or invalid TTL header");
            };
            let mut n = counter.lock().unwrap();
            *n += 1;
            let token = format!("imds-token-{n}-AQAEAEXAMPLE");
            *current.lock().unwrap() = Some(token.clone());
            return Reply::Answer(
                200,
                vec![("x-aws-ec2-metadata-token-ttl-seconds", ttl.to_string())],
                token,
            );
        }
        let ok = r.method == "GET"
            && r.header("x-aws-ec2-metadata-token").is_some()
            && r.header("x-aws-ec2-metadata-token") == current.lock().unwrap().as_deref();
        if !ok {
            return reply(401, "");
        }
        match r.path.as_str() {
            "/latest/meta-data/iam/security-credentials/" => reply(200, role),
            p if p == format!("/latest/meta-data/iam/security-credentials/{role}") => {
                reply(200, creds().json())
            }
            _ => reply(404, ""),
        }
    })
}

/// A container credentials endpoint at `path`: the `Authorization` header must equal the
/// content of `token_file` (trailing newline dropped) at the time of the request, else 401
/// with the documented error JSON.
pub fn container(path: &'static str, token_file: std::path::PathBuf, creds: CredsFn) -> StandIn {
    StandIn::start(move |r| {
        let expected = std::fs::read_to_string(&token_file).unwrap_or_default();
        let expected = expected.trim_end_matches(['\r', '\n']);
        if r.method != "GET" || r.path != path {
            return reply(404, r#"{"code":"NotFound","message":"no such path"}"#);
        }
        if expected.is_empty() || r.header("authorization") != Some(expected) {
            return reply(
                401,
                r#"{"code":"AccessDeniedException","message":"invalid authorization token"}"#,
            );
        }
        reply(200, creds().json())
    })
}

/// The form fields of a request body.
pub fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// An STS that answers `AssumeRoleWithWebIdentity` for `role` when the request is a POST to
/// `/`, form-encoded, unsigned, with `Version=2011-06-15`, `RoleArn` = `role`, a valid
/// `RoleSessionName` and `WebIdentityToken` equal to the content of `token_file` (trimmed);
/// otherwise the error STS would send.
pub fn sts_web_identity(
    role: &'static str,
    token_file: std::path::PathBuf,
    creds: CredsFn,
) -> StandIn {
    StandIn::start(move |r| {
        let f = form(&r.body);
        let field = |k: &str| f.get(k).map(String::as_str);
        if r.method != "POST"
            || r.path != "/"
            || !r
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
            || field("Action") != Some("AssumeRoleWithWebIdentity")
            || field("Version") != Some("2011-06-15")
        {
            return reply(
                400,
                sts_error("InvalidAction", "not an AssumeRoleWithWebIdentity call"),
            );
        }
        if r.header("authorization").is_some() || r.header("x-amz-security-token").is_some() {
            return reply(
                400,
                sts_error("InvalidRequest", "the call must be unsigned"),
            );
        }
        let session = field("RoleSessionName").unwrap_or("");
        let session_ok = (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !session_ok {
            return reply(400, sts_error("ValidationError", "bad RoleSessionName"));
        }
        let expected = std::fs::read_to_string(&token_file).unwrap_or_default();
        if field("WebIdentityToken") != Some(expected.trim()) || expected.trim().is_empty() {
            return reply(
                400,
                sts_error("InvalidIdentityToken", "token does not match"),
            );
        }
        if field("RoleArn") != Some(role) {
            return reply(
                403,
                sts_error(
                    "AccessDenied",
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                ),
            );
        }
        reply(200, creds().web_identity_xml(role, session))
    })
}
