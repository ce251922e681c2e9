//! An SMTP sink (RFC 5321) for the tests: a small server on 127.0.0.1:0 that speaks EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA, RSET, NOOP and QUIT, accepts every message and keeps it. Tessera's
//! mailer (lettre) talks real SMTP to it; the tests read the mails as a person would — the
//! subject, the text/plain and text/html parts (quoted-printable or base64 decoded), the link.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A message as the sink received it, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope's `MAIL FROM` and `RCPT TO`.
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    /// The top-level `Content-Type`.
    pub content_type: String,
    /// The decoded text/plain and text/html parts.
    pub text: Option<String>,
    pub html: Option<String>,
    pub raw: String,
}

impl Mail {
    /// The first URL in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let text = self.text.as_deref().unwrap_or_else(|| panic!("no text/plain part: {}", self.raw));
        let start = text.find(prefix).unwrap_or_else(|| panic!("no link starting with {prefix} in {text}"));
        text[start..].split(|c: char| c.is_whitespace()).next().unwrap_or_default().to_string()
    }

    /// The text part, which every mail has.
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_else(|| panic!("no text/plain part: {}", self.raw))
    }
}

/// A running sink: every message it accepted, in order.
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (m, a) = (mails.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (m, a) = (m.clone(), a.clone());
                tokio::spawn(async move {
                    let _ = session(conn, m, a).await;
                });
            }
        });
        Self { addr, mails, arrived }
    }

    /// `--smtp-url` for it: plain SMTP on loopback.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// A mailer for a [`crate::common::TestServer`]'s config.
    pub fn mailer(&self) -> Arc<tessera_server::mail::Mailer> {
        Arc::new(tessera_server::mail::Mailer::new(&self.url(), "Tessera <id@tessera.test>").unwrap())
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails received for `to` so far whose subject contains `subject`.
    pub fn mails_to(&self, to: &str, subject: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.envelope_to.iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject.contains(subject)).collect()
    }

    /// Wait (at most 10 s) until `to` has received `n` mails whose subject contains `subject`;
    /// returns the `n`-th.
    pub async fn nth(&self, to: &str, subject: &str, n: usize) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let got = self.mails_to(to, subject);
            if got.len() >= n {
                return got[n - 1].clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let all: Vec<_> = self.mails().iter().map(|m| (m.envelope_to.clone(), m.subject.clone())).collect();
                panic!("{to} has {} mails about {subject:?}, not {n}; all mails: {all:?}", got.len());
            }
        }
    }

    /// After a moment in which a mail sent now would have arrived, `to` has exactly `n` mails
    /// whose subject contains `subject`.
    pub async fn settled_count(&self, to: &str, subject: &str, n: usize) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got = self.mails_to(to, subject);
        assert_eq!(got.len(), n, "mails to {to} about {subject:?}: {:?}", self.mails().iter().map(|m| (&m.envelope_to, &m.subject)).collect::<Vec<_>>());
    }
}

/// One SMTP session (RFC 5321 §4.1), without STARTTLS or AUTH.
async fn session(conn: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>, arrived: Arc<tokio::sync::Notify>) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP test sink\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = angle(&cmd["MAIL FROM:".len()..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(angle(&cmd["RCPT TO:".len()..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // RFC 5321 §4.5.2: a leading dot was doubled.
                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            let mail = parse(&from, &to, &data);
            mails.lock().unwrap().push(mail);
            arrived.notify_waiters();
            b"250 OK queued\r\n"
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        w.write_all(reply).await?;
    }
}

fn angle(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Headers (unfolded, names lowercased) and the body of a MIME entity.
fn split_entity(entity: &str) -> (Vec<(String, String)>, String) {
    let entity = entity.replace("\r\n", "\n");
    let (head, body) = entity.split_once("\n\n").unwrap_or((&entity, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in head.lines() {
        if l.starts_with(' ') || l.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
            }
        } else if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn parse(from: &str, to: &[String], data: &str) -> Mail {
    let (headers, body) = split_entity(data);
    let content_type = header(&headers, "content-type").to_string();
    let mut mail = Mail {
        envelope_from: from.into(),
        envelope_to: to.to_vec(),
        subject: decode_words(header(&headers, "subject")),
        from: header(&headers, "from").into(),
        to: header(&headers, "to").into(),
        content_type: content_type.clone(),
        text: None,
        html: None,
        raw: data.into(),
    };
    let mut parts = Vec::new();
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        let boundary = param(&content_type, "boundary").expect("a multipart boundary");
        let delimiter = format!("--{boundary}");
        for chunk in body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            parts.push(split_entity(chunk.trim_start_matches('\n')));
        }
    } else {
        parts.push((headers.clone(), body));
    }
    for (h, b) in parts {
        let decoded = match header(&h, "content-transfer-encoding").to_ascii_lowercase().as_str() {
            "quoted-printable" => quoted_printable(&b),
            "base64" => {
                use base64::Engine;
                let compact: String = b.chars().filter(|c| !c.is_whitespace()).collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
            }
            _ => b,
        };
        let ct = header(&h, "content-type").to_ascii_lowercase();
        if ct.starts_with("text/plain") {
            mail.text = Some(decoded);
        } else if ct.starts_with("text/html") {
            mail.html = Some(decoded);
        }
    }
    mail
}

fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// RFC 2045 §6.7: soft line breaks (`=` at the end of a line) and `=XX` octets.
pub fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = bytes.get(i + 1..i + 3).map(|h| std::str::from_utf8(h).unwrap()).unwrap_or_else(|| panic!("a truncated =XX in {s:?}"));
            out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad quoted-printable {hex:?}")));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// One RFC 2047 encoded word (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`), decoded.
fn encoded_word(word: &str) -> Option<String> {
    use base64::Engine;
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut it = inner.splitn(3, '?');
    let (_charset, enc, text) = (it.next()?, it.next()?, it.next()?);
    Some(if enc.eq_ignore_ascii_case("b") {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
    } else {
        quoted_printable(&text.replace('_', " "))
    })
}

/// A header's value with its encoded words decoded (RFC 2047 §6.2: the space between two
/// encoded words is not part of the text).
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut last_encoded = false;
    for word in v.split_whitespace() {
        match encoded_word(word) {
            Some(d) => {
                if !out.is_empty() && !last_encoded {
                    out.push(' ');
                }
                out.push_str(&d);
                last_encoded = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
                last_encoded = false;
            }
        }
    }
    out
}

#[test]
fn the_sink_decodes_what_lettre_writes() {
    assert_eq!(quoted_printable("a=3Db=\nc"), "a=bc");
    assert_eq!(decode_words("=?utf-8?b?w6k=?= =?utf-8?q?=C3=A9?= x"), "éé x");
    assert_eq!(decode_words("Reset your password"), "Reset your password");
}
