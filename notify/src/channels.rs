//! The ways a notification leaves the server: e-mail over SMTP, Web Push, SMS by webhook.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder};

/// Why a delivery did not go out.
#[derive(Debug)]
pub enum Failure {
    /// Worth trying again later (server down, timeout, 5xx, 429).
    Transient(String),
    /// Trying again cannot help (bad address, 4xx).
    Permanent(String),
    /// The push subscription no longer exists (404 or 410 from the push service).
    Gone(String),
}

/// How long one attempt on any channel may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// E-mail over SMTP.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    /// A sender for `url` (`smtp://host:port` with STARTTLS when offered… see lettre's
    /// `from_url`: `smtp://`, `smtps://`, `?tls=required`, credentials in the userinfo) and the
    /// `from` address.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("TELEMED_SMTP_URL is not a usable SMTP URL: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("TELEMED_SMTP_FROM is not an e-mail address: {e}"))?;
        Ok(Self { transport, from })
    }

    /// Sends a multipart (plain text and HTML) message to `to`.
    pub async fn send(
        &self,
        to: &str,
        to_name: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), Failure> {
        let to = Mailbox::new(
            Some(to_name.to_string()),
            to.parse().map_err(|e| {
                Failure::Permanent(format!("the recipient address is invalid: {e}"))
            })?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Failure::Permanent(format!("could not build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(format!("SMTP refused: {e}"))),
            Err(e) => Err(Failure::Transient(format!("SMTP: {e}"))),
        }
    }
}

/// A Web Push subscription of one device.
pub struct Subscription {
    /// The push service URL.
    pub endpoint: String,
    /// The browser's P-256 public key (base64url).
    pub p256dh: String,
    /// The browser's auth secret (base64url).
    pub auth: String,
}

/// Web Push with VAPID.
pub struct Push {
    key: ES256KeyPair,
    subject: String,
    public_key: String,
    http: reqwest::Client,
}

impl Push {
    /// A sender signing with the VAPID private key `private_key` (base64url, 32 bytes) and
    /// contact `subject` (`mailto:` or `https:`).
    pub fn new(private_key: &str, subject: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private_key.trim().trim_end_matches('='))
            .map_err(|e| format!("TELEMED_VAPID_PRIVATE_KEY is not base64url: {e}"))?;
        let key = ES256KeyPair::from_bytes(&bytes).map_err(|e| {
            format!("TELEMED_VAPID_PRIVATE_KEY is not a P-256 private key (32 bytes): {e}")
        })?;
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err("TELEMED_VAPID_SUBJECT must be a mailto: or https: URL".to_string());
        }
        let public_key =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Self {
            key,
            subject: subject.to_string(),
            public_key,
            http: client(),
        })
    }

    /// The VAPID public key browsers subscribe with (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Sends `payload` to one device. `Gone` means the subscription should be forgotten.
    pub async fn send(&self, subscription: &Subscription, payload: &[u8]) -> Result<(), Failure> {
        let unusable =
            |what: &str| Failure::Permanent(format!("the subscription's {what} is invalid"));
        let endpoint = subscription
            .endpoint
            .parse()
            .map_err(|_| unusable("endpoint"))?;
        let p256dh = URL_SAFE_NO_PAD
            .decode(subscription.p256dh.trim_end_matches('='))
            .ok()
            .and_then(|bytes| web_push_native::p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or_else(|| unusable("p256dh key"))?;
        let auth = URL_SAFE_NO_PAD
            .decode(subscription.auth.trim_end_matches('='))
            .ok()
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .map(Auth::from)
            .ok_or_else(|| unusable("auth secret"))?;
        let request = WebPushBuilder::new(endpoint, p256dh, auth)
            .with_valid_duration(Duration::from_secs(24 * 3600))
            .with_vapid(&self.key, &self.subject)
            .build(payload.to_vec())
            .map_err(|e| Failure::Permanent(format!("could not encrypt for the device: {e:?}")))?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Failure::Permanent(format!("could not build the push request: {e}")))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| Failure::Transient(format!("push service unreachable: {e}")))?;
        classify("push service", response.status())
    }
}

/// SMS through the operator's HTTP provider: `POST {url}` with a JSON body
/// `{"id", "to", "body"}` (and `Authorization: Bearer {token}` when a token is set); any 2xx
/// means accepted. `id` is stable per delivery, for the provider's own de-duplication.
pub struct Sms {
    url: reqwest::Url,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl Sms {
    /// A sender posting to `url`.
    pub fn new(url: &str, token: Option<SecretString>) -> Result<Self, String> {
        let url: reqwest::Url = url
            .parse()
            .map_err(|e| format!("TELEMED_SMS_WEBHOOK_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("TELEMED_SMS_WEBHOOK_URL must be an http(s) URL".to_string());
        }
        Ok(Self {
            url,
            token,
            http: client(),
        })
    }

    /// Sends `body` to the phone number `to` (E.164).
    pub async fn send(&self, id: uuid::Uuid, to: &str, body: &str) -> Result<(), Failure> {
        let mut request = self
            .http
            .post(self.url.clone())
            .json(&json!({ "id": id, "to": to, "body": body }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("SMS provider unreachable: {e}")))?;
        classify("SMS provider", response.status())
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// 2xx: sent; 429 and 5xx: try again; 404 and 410: gone; other 4xx: never.
fn classify(who: &str, status: reqwest::StatusCode) -> Result<(), Failure> {
    if status.is_success() {
        Ok(())
    } else if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        Err(Failure::Gone(format!("{who} answered {status}")))
    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(Failure::Transient(format!("{who} answered {status}")))
    } else {
        Err(Failure::Permanent(format!("{who} refused: {status}")))
    }
}
