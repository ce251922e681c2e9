//! Outgoing mail over SMTP (issue 15): the [`Mailer`] that `--smtp-url` and `--email-from` make,
//! and [`Mail`], a message with a plain-text and an HTML part (`multipart/alternative`).
//!
//! The URL (`docs/email.md`):
//! - `smtps://[USER:PASSWORD@]HOST[:PORT]`: TLS from the first byte (RFC 8314 §3.3), port 465
//!   by default;
//! - `smtp://[USER:PASSWORD@]HOST[:PORT]`: STARTTLS (RFC 3207), required — a server that does
//!   not offer it is not sent to, so that no one in between can strip it and read the links —
//!   port 587 by default; except on a loopback host (127.0.0.0/8, `::1`, `localhost`: a local
//!   relay or a test sink), where it is plain SMTP, port 25 by default;
//! - `?tls=required|opportunistic|none` overrides the choice (`none` only on purpose).
//!
//! User name and password are percent-decoded from the URL's userinfo. Every SMTP command
//! waits at most [`COMMAND_TIMEOUT`] and a whole send at most [`SEND_TIMEOUT`]: a slow or
//! unreachable server never holds a request or a task longer than that.

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// The longest one SMTP command may wait for its answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one message's sending may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// One message: to one recipient, a subject, and the same content as plain text and as HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a mail was not sent, or a mailer not made.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `--smtp-url` or `--email-from` is wrong (the message names the setting).
    #[error("{0}")]
    Settings(String),
    /// The recipient's address cannot be written in a message.
    #[error("not an email address: {0}")]
    Address(String),
    #[error("sending failed: {0}")]
    Send(String),
    #[error("sending took longer than {} seconds", SEND_TIMEOUT.as_secs())]
    Timeout,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`).
    Tls,
    /// Plain, then STARTTLS, which must succeed.
    StartTls,
    /// STARTTLS when the server offers it, else plain (`?tls=opportunistic`).
    Opportunistic,
    /// Plain SMTP (a loopback `smtp://`, or `?tls=none`).
    Plain,
}

/// Where mail goes: the SMTP server named by `--smtp-url`, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u.as_str()))
            .finish()
    }
}

fn settings(msg: impl Into<String>) -> MailError {
    MailError::Settings(msg.into())
}

impl SmtpUrl {
    /// Parse `smtp://…` or `smtps://…` (see the module's documentation).
    pub fn parse(text: &str) -> Result<Self, MailError> {
        const NAME: &str = "SMTP URL (--smtp-url / TESSERA_SMTP_URL)";
        let url = url::Url::parse(text).map_err(|e| settings(format!("{NAME}: not a URL ({e})")))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(settings(format!("{NAME}: no host"))),
        };
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
        let mut security = match url.scheme() {
            "smtps" => Security::Tls,
            "smtp" if loopback => Security::Plain,
            "smtp" => Security::StartTls,
            other => return Err(settings(format!("{NAME}: the scheme is {other:?}; use smtp:// (STARTTLS) or smtps:// (TLS)"))),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(settings(format!("{NAME}: no path or fragment, only smtp[s]://[USER:PASSWORD@]HOST[:PORT][?tls=…]")));
        }
        for (k, v) in url.query_pairs() {
            security = match (k.as_ref(), v.as_ref(), security) {
                ("tls", "required", Security::Tls) => Security::Tls,
                ("tls", "required", _) => Security::StartTls,
                ("tls", "opportunistic", Security::Tls) | ("tls", "none", Security::Tls) => {
                    return Err(settings(format!("{NAME}: smtps:// is always TLS; use smtp:// for tls={v}")));
                }
                ("tls", "opportunistic", _) => Security::Opportunistic,
                ("tls", "none", _) => Security::Plain,
                ("tls", other, _) => return Err(settings(format!("{NAME}: tls={other:?} is not required, opportunistic or none"))),
                (other, _, _) => return Err(settings(format!("{NAME}: unknown parameter {other:?} (only tls)"))),
            };
        }
        let port = url.port().unwrap_or(match security {
            Security::Tls => 465,
            Security::Plain if loopback => 25,
            _ => 587,
        });
        let decode = |s: &str| percent_decode(s).ok_or_else(|| settings(format!("{NAME}: the user or password is not UTF-8 once decoded")));
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        Ok(Self { host, port, security, credentials })
    }

    /// The URL without its password, for logs and start-up lines.
    pub fn shown(&self) -> String {
        let scheme = if self.security == Security::Tls { "smtps" } else { "smtp" };
        let user = self.credentials.as_ref().map(|(u, _)| format!("{u}@")).unwrap_or_default();
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{scheme}://{user}{host}:{}", self.port)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// The server's mail sender: an SMTP transport (a small connection pool) and the `From`
/// address. Its `Debug` shows no password.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    url: SmtpUrl,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("smtp", &self.url.shown()).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// The mailer `--smtp-url` and `--email-from` name. Nothing is connected yet: the first
    /// mail opens the connection. Made (and dropped) inside a Tokio runtime: its connection
    /// pool runs a task there.
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(settings("a mailer is made inside a Tokio runtime"));
        }
        let url = SmtpUrl::parse(smtp_url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| settings(format!("sender (--email-from / TESSERA_EMAIL_FROM): {from:?} is not an address like Tessera <id@example.com> ({e})")))?;
        let tls = || TlsParameters::new(url.host.clone()).map_err(|e| settings(format!("SMTP URL (--smtp-url): TLS: {e}")));
        let tls = match url.security {
            Security::Tls => Tls::Wrapper(tls()?),
            Security::StartTls => Tls::Required(tls()?),
            Security::Opportunistic => Tls::Opportunistic(tls()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone()).port(url.port).tls(tls).timeout(Some(COMMAND_TIMEOUT));
        if let Some((user, password)) = &url.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build(), from, url })
    }

    /// The SMTP server, without its password.
    pub fn smtp(&self) -> String {
        self.url.shown()
    }

    /// The `From` address.
    pub fn from_address(&self) -> String {
        self.from.to_string()
    }

    /// Send `mail` (at most [`SEND_TIMEOUT`]).
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::Address(mail.to.clone()))?;
        let body = MultiPart::alternative()
            .singlepart(lettre::message::SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone()))
            .singlepart(lettre::message::SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html.clone()));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            // RFC 5322 §3.6.4, under the sender's domain (receivers distrust mail without one).
            .message_id(Some(format!("<{}@{}>", crate::secret::random_id(), self.from.email.domain())))
            .multipart(body)
            .map_err(|e| MailError::Send(e.to_string()))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(MailError::Send(e.to_string())),
            Err(_) => Err(MailError::Timeout),
        }
    }
}

/// Text made safe for HTML (element content and quoted attribute values).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.security), ("127.0.0.1", 2525, Security::Plain), "loopback: plain");
        let u = SmtpUrl::parse("smtp://localhost").unwrap();
        assert_eq!((u.port, u.security), (25, Security::Plain));
        let u = SmtpUrl::parse("smtp://user%40x:p%3Ass@mail.example").unwrap();
        assert_eq!((u.port, u.security), (587, Security::StartTls), "elsewhere STARTTLS is required");
        assert_eq!(u.credentials, Some(("user@x".into(), "p:ss".into())));
        assert_eq!(u.shown(), "smtp://user@x@mail.example:587");
        assert!(!format!("{u:?}").contains("p:ss"), "no password in Debug");
        let u = SmtpUrl::parse("smtps://mail.example").unwrap();
        assert_eq!((u.port, u.security), (465, Security::Tls));
        assert_eq!(SmtpUrl::parse("smtp://127.0.0.1?tls=required").unwrap().security, Security::StartTls);
        assert_eq!(SmtpUrl::parse("smtp://mail.example?tls=opportunistic").unwrap().security, Security::Opportunistic);
        assert_eq!(SmtpUrl::parse("smtp://mail.example:25?tls=none").unwrap().security, Security::Plain);
        assert_eq!(SmtpUrl::parse("smtp://[::1]:2525").unwrap().shown(), "smtp://[::1]:2525");
        for bad in [
            "http://mail.example",
            "smtp://",
            "smtp://mail.example/x",
            "smtp://mail.example?tls=maybe",
            "smtp://mail.example?x=1",
            "smtps://m.example?tls=none",
            "nonsense",
        ] {
            let e = SmtpUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--smtp-url"), "{bad}: {e}");
        }
        assert_eq!(percent_decode("a%20b"), Some("a b".into()));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[tokio::test]
    async fn mailer_settings() {
        let m = Mailer::new("smtp://u:secret@127.0.0.1:2525", "Tessera <id@example.com>").unwrap();
        assert!(!format!("{m:?}").contains("secret"));
        assert_eq!(m.smtp(), "smtp://u@127.0.0.1:2525");
        let e = Mailer::new("smtp://127.0.0.1:2525", "not an address").unwrap_err().to_string();
        assert!(e.contains("--email-from"), "{e}");
    }

    #[test]
    fn html_escaping() {
        assert_eq!(escape_html("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
