//! Account mail (issue 15): password reset, email verification, invitations, self-registration
//! and notices — the links mailed, what following each does, and the mails themselves.
//!
//! A link carries a single-use 256-bit token from the injected [`crate::secret::Random`]; only
//! its SHA-256 is stored (`UserTokenStore`, one purpose per kind of link, each with its
//! lifetime: [`Link`]), and it is consumed atomically (`take_user_token`: of concurrent uses
//! exactly one gets it). Links are built from the issuer URL.
//!
//! Sending never holds a request for long: what a page asks for is mailed on a task of its own
//! ([`crate::mail::SEND_TIMEOUT`] at most); a failure is logged and audited (`mail_failed`), and
//! what the page says does not change. The forms that mail someone are throttled per client
//! address (answered "try again in …") and per recipient (silently: the answer never says
//! whether an account exists), so they cannot be used to flood a mailbox.

use super::admin::{self, AdminError, NewUser};
use super::{ServiceError, Tessera};
use crate::mail::{Mail, MailError, Mailer, escape_html};
use crate::secret::{self, Random};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_protocol::OAuthError;
use tessera_storage::{NewAuditEvent, Store, StoreError, ThrottleAttempt, UserRecord, UserTokenRecord};

/// The pages the links open (the HTTP crate routes them).
pub mod paths {
    /// "Forgot your password?": the form asking for a username or an address.
    pub const FORGOT: &str = "/password/forgot";
    /// A reset link's page: choose a new password.
    pub const RESET: &str = "/password/reset";
    /// A verification link: the address is confirmed.
    pub const VERIFY_EMAIL: &str = "/email/verify";
    /// An invitation's page: choose a first password.
    pub const INVITE: &str = "/invite";
    /// Self-registration's form.
    pub const REGISTER: &str = "/register";
    /// A registration's link: the account is made.
    pub const REGISTER_CONFIRM: &str = "/register/confirm";
    /// Where a user signs in to their account (the links' pages point there).
    pub const SIGN_IN: &str = "/account/signin";
    /// The account page.
    pub const ACCOUNT: &str = "/account";
}

/// The kinds of link mailed: each a token purpose with a lifetime and a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Choose a new password: 30 minutes; a new request voids the older links.
    Reset,
    /// Confirm the account's address: 24 hours, valid only while the address is the account's.
    VerifyEmail,
    /// An invited user chooses their first password: 7 days.
    Invite,
    /// Finish a self-registration (the account is made then): 24 hours.
    Register,
}

impl Link {
    /// The `UserTokenRecord::purpose`.
    pub fn purpose(self) -> &'static str {
        match self {
            Link::Reset => "reset",
            Link::VerifyEmail => "verify_email",
            Link::Invite => "invite",
            Link::Register => "register",
        }
    }

    /// Seconds the link is valid.
    pub fn lifetime(self) -> i64 {
        match self {
            Link::Reset => 30 * 60,
            Link::VerifyEmail | Link::Register => 24 * 3600,
            Link::Invite => 7 * 24 * 3600,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Link::Reset => paths::RESET,
            Link::VerifyEmail => paths::VERIFY_EMAIL,
            Link::Invite => paths::INVITE,
            Link::Register => paths::REGISTER_CONFIRM,
        }
    }

    fn validity(self) -> &'static str {
        match self {
            Link::Reset => "30 minutes",
            Link::VerifyEmail | Link::Register => "24 hours",
            Link::Invite => "7 days",
        }
    }
}

/// What a link's token holds beside its user: the address it was mailed to and, for a
/// registration, the account to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinkData {
    email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<PendingAccount>,
}

/// A self-registration waiting for its address to be confirmed: no user exists yet, so the
/// username is not taken and nothing can sign in until the link is followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingAccount {
    username: String,
    name: Option<String>,
    /// Argon2id, made when the form was sent.
    password_hash: String,
}

/// Why a link did not do what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRefused {
    /// Expired, used, unknown or garbled (or its account was disabled or deleted since).
    Invalid,
    /// A verification link for an address the account no longer has.
    Stale,
    /// The new password was refused, with the reason; the link still works.
    Password(String),
    /// The hashing threads are at capacity: nothing was done; the link still works.
    Busy,
    /// A registration whose username or address got an account meanwhile.
    Taken(String),
}

/// What a form that mails someone gets back: the same whoever was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailRequest {
    /// If there is someone to mail, a mail is on its way.
    Accepted,
    /// Too many requests from this client address: try again in `retry_after` seconds.
    Throttled { retry_after: i64 },
}

/// What self-registration asks for.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub email: String,
    pub username: String,
    pub name: Option<String>,
    pub password: String,
}

/// Why a registration form was refused (shown on the form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRefused {
    /// A field is wrong; the message says which.
    Invalid(String),
    Throttled {
        retry_after: i64,
    },
    Busy,
}

/// A short mail about something that happened to the account, sent when the user has an
/// address and a mailer is configured; never failing what it reports on
/// ([`Tessera::notify`]).
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// A second factor was added: `kind` as stored (`totp`, `passkey`), its name.
    FactorAdded { kind: &'a str, name: &'a str },
    /// An app was given access for the first time: its name and the scopes granted.
    AppGranted { app: &'a str, scope: &'a str },
    /// The account's address changed from `old` (where this notice goes) to `new`.
    EmailChanged { old: &'a str, new: &'a str },
}

/// A mailed link: the token made, stored by hash, and the URL carrying it.
async fn create_link(
    store: &dyn Store,
    random: &dyn Random,
    issuer: &str,
    link: Link,
    user_id: &str,
    data: &LinkData,
    now: i64,
) -> Result<String, ServiceError> {
    let token = random.token();
    let rec = UserTokenRecord {
        token_hash: secret::hash(&token),
        purpose: link.purpose().into(),
        user_id: user_id.into(),
        data: serde_json::to_string(data).map_err(|e| OAuthError::server_error(e.to_string()))?,
        created_at: now,
        expires_at: now + link.lifetime(),
    };
    store.create_user_token(&rec).await?;
    Ok(format!("{issuer}{}?token={token}", link.path()))
}

/// A token as a link brings it: a sensible length, else it is not looked up.
fn token_hash(token: &str) -> Option<String> {
    (!token.is_empty() && token.len() <= 128).then(|| secret::hash(token))
}

/// The site's name in mails: the issuer's host.
pub fn site_name(issuer: &str) -> String {
    url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "Tessera".into())
}

/// A mail of a few paragraphs and, optionally, one link (a button in HTML, the URL in both).
fn compose(to: &str, subject: String, paragraphs: &[String], link: Option<(&str, &str)>, after: &[String]) -> Mail {
    let mut text = String::new();
    let mut html = String::from("<!doctype html>\n<html><body style=\"font-family: sans-serif; line-height: 1.5; max-width: 36em\">\n");
    for p in paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>\n", escape_html(p)));
    }
    if let Some((label, url)) = link {
        text.push_str(url);
        text.push_str("\n\n");
        let u = escape_html(url);
        html.push_str(&format!(
            "<p><a href=\"{u}\" style=\"display: inline-block; padding: .5em 1em; background: #2456a4; color: #fff; text-decoration: none; border-radius: 4px\">{}</a></p>\n<p style=\"font-size: small\">Or open this address: <a href=\"{u}\">{u}</a></p>\n",
            escape_html(label)
        ));
    }
    for p in after {
        text.push_str(p);
        text.push_str("\n\n");
        html.push_str(&format!("<p style=\"color: #555\">{}</p>\n", escape_html(p)));
    }
    html.push_str("</body></html>\n");
    Mail { to: to.to_string(), subject, text: text.trim_end().to_string() + "\n", html }
}

fn reset_mail(issuer: &str, user: &UserRecord, to: &str, url: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("Reset your password for {site}"),
        &[
            format!("Hello {},", user.name.as_deref().unwrap_or(&user.username)),
            format!(
                "Someone, hopefully you, asked to reset the password of your account {} at {site}. Choose a new password with this link within {}:",
                user.username,
                Link::Reset.validity()
            ),
        ],
        Some(("Choose a new password", url)),
        &["The link works once. If you did not ask for this, ignore this mail: your password stays as it is.".into()],
    )
}

fn verify_mail(issuer: &str, user: &UserRecord, to: &str, url: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("Confirm your email address for {site}"),
        &[
            format!("Hello {},", user.name.as_deref().unwrap_or(&user.username)),
            format!("Confirm that {to} is the address of your account {} at {site} with this link within {}:", user.username, Link::VerifyEmail.validity()),
        ],
        Some(("Confirm my address", url)),
        &["If you did not ask for this, ignore this mail.".into()],
    )
}

fn invite_mail(issuer: &str, user: &UserRecord, to: &str, url: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("You are invited to {site}"),
        &[
            format!("Hello {},", user.name.as_deref().unwrap_or(to)),
            format!(
                "An account was made for you at {site}, with the username {}. Choose your password with this link within {} to start using it:",
                user.username,
                Link::Invite.validity()
            ),
        ],
        Some(("Choose my password", url)),
        &["The link works once. If you did not expect this, ignore this mail.".into()],
    )
}

fn register_mail(issuer: &str, username: &str, to: &str, url: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("Finish creating your account at {site}"),
        &[format!(
            "Someone, hopefully you, asked to create the account {username} at {site} with this address. Open this link within {} to finish:",
            Link::Register.validity()
        )],
        Some(("Create my account", url)),
        &["If it was not you, ignore this mail: no account is made.".into()],
    )
}

fn already_registered_mail(issuer: &str, user: &UserRecord, to: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("You already have an account at {site}"),
        &[
            format!(
                "Someone, hopefully you, tried to create an account at {site} with this address, which already has one: {}. No new account was made.",
                user.username
            ),
            "Sign in with it; if you forgot its password, you can choose a new one:".into(),
        ],
        Some(("Choose a new password", &format!("{issuer}{}", paths::FORGOT))),
        &["If it was not you, ignore this mail.".into()],
    )
}

fn username_taken_mail(issuer: &str, username: &str, to: &str) -> Mail {
    let site = site_name(issuer);
    compose(
        to,
        format!("Choose another username at {site}"),
        &[format!(
            "Someone, hopefully you, tried to create the account {username} at {site} with this address, but that username is taken. No account was made; register again with another username:"
        )],
        Some(("Register again", &format!("{issuer}{}", paths::REGISTER))),
        &["If it was not you, ignore this mail.".into()],
    )
}

fn notice_mail(issuer: &str, user: &UserRecord, to: &str, notice: Notice<'_>) -> Mail {
    let site = site_name(issuer);
    let account = format!("{issuer}{}", paths::ACCOUNT);
    let not_you = "If this was not you, sign in, remove what you do not recognise and change your password:".to_string();
    let (subject, what) = match notice {
        Notice::FactorAdded { kind, name } => {
            let kind = match kind {
                "totp" => "An authenticator app",
                "passkey" => "A passkey",
                other => other,
            };
            (
                format!("A second factor was added to your account at {site}"),
                format!("{kind} named \u{201c}{name}\u{201d} was added as a second factor of your account {} at {site}.", user.username),
            )
        }
        Notice::AppGranted { app, scope } => (
            format!("{app} can now use your account at {site}"),
            format!("You gave {app} access to your account {} at {site} (scopes: {scope}). You can remove its access on your account page.", user.username),
        ),
        Notice::EmailChanged { new, .. } => (
            format!("The email address of your account at {site} was changed"),
            format!("The email address of your account {} at {site} was changed from this address to {new}.", user.username),
        ),
    };
    compose(to, subject, &[format!("Hello {},", user.name.as_deref().unwrap_or(&user.username)), what, not_you], Some(("Your account", &account)), &[])
}

/// Send `mail` now and wait; a failure is logged and audited (`mail_failed`, about `user_id`)
/// and returned.
pub async fn send_recorded(store: &dyn Store, mailer: &Mailer, mail: &Mail, user_id: Option<&str>, what: &str, now: i64) -> Result<(), MailError> {
    match mailer.send(mail).await {
        Ok(()) => {
            tracing::info!(mail = what, user = user_id.unwrap_or(""), "mail sent");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(mail = what, user = user_id.unwrap_or(""), error = %e, "sending mail failed");
            let detail = json!({ "mail": what, "error": e.to_string() }).to_string();
            let event = NewAuditEvent { kind: "mail_failed", actor: "", user_id, client_id: None, detail: &detail };
            if let Err(se) = store.record_audit_event(&event, now).await {
                tracing::warn!(error = %se, "recording a failed mail failed");
            }
            Err(e)
        }
    }
}

/// What `tessera user invite` did.
#[derive(Debug, Clone)]
pub struct Invited {
    pub user: UserRecord,
    /// When the mailed link stops working.
    pub link_expires_at: i64,
}

/// Why an invitation was not made.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the invitation could not be sent, so no user was created: {0}")]
    Mail(MailError),
}

impl From<ServiceError> for InviteError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(s) => Self::Admin(AdminError::Store(s)),
            ServiceError::OAuth(o) => Self::Admin(AdminError::Invalid(o.description)),
        }
    }
}

impl admin::Acting<'_> {
    /// `tessera user invite`: a user with the address and no usable password (the Argon2id
    /// hash of a random value nobody knows), and a mailed link to choose one within 7 days
    /// (choosing it verifies the address). The mail is sent before this returns; if it cannot
    /// be, the user is deleted again and nothing remains. Recorded (`admin.user_created`,
    /// `admin.user_invited`).
    pub async fn invite(&self, mailer: &Mailer, issuer: &str, random: &dyn Random, req: NewUser) -> Result<Invited, InviteError> {
        let Some(email) = req.email.clone() else { return Err(AdminError::Invalid("--email is required".into()).into()) };
        if email.parse::<lettre::Address>().is_err() {
            return Err(AdminError::Invalid("--email is not an email address".into()).into());
        }
        let unknowable = random.token();
        let hash = match super::authn::on_hashing_thread(move || super::authn::hash_password(&unknowable)).await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(AdminError::Invalid(e).into()),
            Err(_) => return Err(AdminError::Busy.into()),
        };
        let user = self.create_user(req, hash).await?;
        let issuer = issuer.trim_end_matches('/');
        let url = create_link(self.store, random, issuer, Link::Invite, &user.id, &LinkData { email: email.clone(), account: None }, self.now).await?;
        let mail = invite_mail(issuer, &user, &email, &url);
        if let Err(e) = send_recorded(self.store, mailer, &mail, Some(&user.id), "invite", self.now).await {
            self.delete_user(&user.username).await?;
            return Err(InviteError::Mail(e));
        }
        let detail = json!({ "username": user.username, "email": email });
        admin::record_change(self.store, self.actor, "admin.user_invited", Some(&user.id), None, &detail.to_string(), self.now).await?;
        Ok(Invited { link_expires_at: self.now + Link::Invite.lifetime(), user })
    }
}

/// A typed address, checked as a mail can be sent to it.
fn email_address(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() <= 254 && t.parse::<lettre::Address>().is_ok()).then(|| t.to_string())
}

impl Tessera {
    /// Whether mail can be sent (a mailer is configured): the pages that need it exist only then.
    pub fn mail_enabled(&self) -> bool {
        self.config.mailer.is_some()
    }

    /// Send `mail` on a task of its own (never holding the request); a failure is logged and
    /// audited.
    fn send_later(&self, mail: Mail, user_id: Option<String>, what: &'static str) {
        let Some(mailer) = self.config.mailer.clone() else { return };
        let store = self.store.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let _ = send_recorded(&*store, &mailer, &mail, user_id.as_deref(), what, clock.now()).await;
        });
    }

    /// One more mail to `recipient` (an account id, or an address): allowed, or silently not
    /// (the recipient's throttle, [`super::Config::mail_recipient_throttle`]), with the wait.
    async fn take_recipient_attempt(&self, recipient: &str) -> Result<Result<(), i64>, ServiceError> {
        let key = format!("mail-to:{}", recipient.to_lowercase());
        match self.store.take_throttle_attempt(&[(key, self.config.mail_recipient_throttle)], self.now()).await? {
            ThrottleAttempt::Allowed { .. } => Ok(Ok(())),
            ThrottleAttempt::Refused { retry_after, .. } => Ok(Err(retry_after)),
        }
    }

    /// One more mailing request from client `address` for `form` (reset, register), or the wait.
    async fn take_address_attempt(&self, form: &str, address: &str) -> Result<Result<(), i64>, ServiceError> {
        let key = format!("{form}-addr:{address}");
        match self.store.take_throttle_attempt(&[(key, self.config.mail_address_throttle)], self.now()).await? {
            ThrottleAttempt::Allowed { .. } => Ok(Ok(())),
            ThrottleAttempt::Refused { retry_after, .. } => Ok(Err(retry_after)),
        }
    }

    // --- Password reset ------------------------------------------------------------------------

    /// "Forgot your password?": `who` is a username or an email address. Every enabled account
    /// it names that has an address gets a reset link, valid [`Link::Reset`]'s 30 minutes, that
    /// voids the older ones; the answer is the same whether or not anyone was found (only the
    /// client address's throttle is said). Audited (`password_reset_requested`, and
    /// `password_reset_throttled`).
    pub async fn request_password_reset(&self, who: &str, address: &str) -> Result<MailRequest, ServiceError> {
        let now = self.now();
        if let Err(retry_after) = self.take_address_attempt("reset", address).await? {
            let detail = json!({ "address": address, "retry_after": retry_after, "throttled_by": "address" });
            self.store.create_audit_event("password_reset_throttled", &detail.to_string(), now).await?;
            return Ok(MailRequest::Throttled { retry_after });
        }
        let who = who.trim();
        if who.is_empty() || who.chars().count() > 254 || !self.mail_enabled() {
            return Ok(MailRequest::Accepted);
        }
        // A name with an `@` may be an address or a username (an invited user's is the address).
        let mut users = if who.contains('@') { self.store.find_users_by_email(who).await? } else { Vec::new() };
        if let Some(u) = self.store.find_user_by_username(who).await? {
            if !users.iter().any(|x| x.id == u.id) {
                users.push(u);
            }
        }
        if users.is_empty() {
            let named: String = who.chars().take(128).collect();
            self.store.create_audit_event("password_reset_requested", &json!({ "address": address, "named": named, "found": false }).to_string(), now).await?;
        }
        for user in users {
            let sent = match (&user.email, user.disabled_at) {
                (None, _) => Err("no_email"),
                (Some(_), Some(_)) => Err("disabled"),
                (Some(_), None) => match self.take_recipient_attempt(&user.id).await? {
                    Ok(()) => Ok(()),
                    Err(_) => Err("throttled"),
                },
            };
            if let (Ok(()), Some(email)) = (sent, &user.email) {
                self.store.delete_user_tokens(&user.id, Link::Reset.purpose()).await?;
                let data = LinkData { email: email.clone(), account: None };
                let url = create_link(&*self.store, &*self.random, &self.config.issuer, Link::Reset, &user.id, &data, now).await?;
                self.send_later(reset_mail(&self.config.issuer, &user, email, &url), Some(user.id.clone()), "reset");
            }
            let detail = match sent {
                Ok(()) => json!({ "address": address, "sent": true }),
                Err(why) => json!({ "address": address, "sent": false, "reason": why }),
            };
            self.audit("password_reset_requested", Some(&user.id), None, &detail.to_string()).await?;
        }
        Ok(MailRequest::Accepted)
    }

    /// The enabled user a reset or invitation link is for, while it is valid (the page that
    /// asks for the password; nothing is consumed).
    pub async fn find_link_user(&self, link: Link, token: &str) -> Result<Option<UserRecord>, ServiceError> {
        let Some(hash) = token_hash(token) else { return Ok(None) };
        let Some(rec) = self.store.find_user_token(&hash, link.purpose(), self.now()).await? else { return Ok(None) };
        self.active_user(&rec.user_id).await
    }

    /// A reset or invitation link's form: the new password (the policy applies, hashed before
    /// the link is used, so a refused password leaves it working), then the link is consumed —
    /// once: of concurrent submissions exactly one sets the password — and every session and
    /// refresh token of the user ends. An invitation's password also verifies the address it
    /// went to (the invited user proved they read it). Nobody is signed in. Audited
    /// (`password_reset`, `invitation_accepted`).
    pub async fn set_password_by_link(&self, link: Link, token: &str, password: &str, address: &str) -> Result<Result<UserRecord, LinkRefused>, ServiceError> {
        if !matches!(link, Link::Reset | Link::Invite) {
            return Ok(Err(LinkRefused::Invalid));
        }
        // A link already used or expired is said before an Argon2 run.
        let Some(hash_of_token) = token_hash(token) else { return Ok(Err(LinkRefused::Invalid)) };
        let Some(linked) = self.find_link_user(link, token).await? else {
            return Ok(Err(LinkRefused::Invalid));
        };
        let factors = admin::Factors::of(&*self.store, &linked.id).await?;
        let hash = match admin::hash_new_password(&self.config.password_policy, &self.config.argon2, password.to_string(), factors).await {
            Ok(h) => h,
            Err(AdminError::Busy) => return Ok(Err(LinkRefused::Busy)),
            Err(AdminError::Store(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(LinkRefused::Password(sentence(&e.to_string())))),
        };
        let now = self.now();
        let Some(rec) = self.store.take_user_token(&hash_of_token, link.purpose(), now).await? else { return Ok(Err(LinkRefused::Invalid)) };
        let Some(user) = self.active_user(&rec.user_id).await? else { return Ok(Err(LinkRefused::Invalid)) };
        // Every session and refresh token of the user ends with the old password.
        if !self.store.update_user_password(&user.username, &hash, None, now).await? {
            return Ok(Err(LinkRefused::Invalid));
        }
        self.store.delete_user_tokens(&user.id, link.purpose()).await?;
        let kind = match link {
            Link::Invite => {
                if let Ok(data) = serde_json::from_str::<LinkData>(&rec.data) {
                    self.store.update_user_email_verified(&user.id, &data.email).await?;
                }
                "invitation_accepted"
            }
            _ => "password_reset",
        };
        self.audit(kind, Some(&user.id), None, &json!({ "address": address }).to_string()).await?;
        Ok(self.store.find_user(&user.id).await?.ok_or(LinkRefused::Invalid))
    }

    // --- Email verification --------------------------------------------------------------------

    /// "Send verification link" on the account page: a link to the account's address, valid 24
    /// hours (the older ones void). `Err`: why not, for the page (no address, or too many
    /// links lately).
    pub async fn send_verification(&self, user: &UserRecord) -> Result<Result<String, String>, ServiceError> {
        let Some(email) = user.email.clone() else { return Ok(Err("Your account has no email address. Add one first.".into())) };
        if !self.mail_enabled() {
            return Ok(Err("This server sends no mail.".into()));
        }
        if user.email_verified {
            return Ok(Err(format!("{email} is verified already.")));
        }
        if let Err(secs) = self.take_recipient_attempt(&user.id).await? {
            return Ok(Err(format!("A link was sent a moment ago. You can ask for another in {}.", wait_text(secs))));
        }
        let now = self.now();
        self.store.delete_user_tokens(&user.id, Link::VerifyEmail.purpose()).await?;
        let data = LinkData { email: email.clone(), account: None };
        let url = create_link(&*self.store, &*self.random, &self.config.issuer, Link::VerifyEmail, &user.id, &data, now).await?;
        self.send_later(verify_mail(&self.config.issuer, user, &email, &url), Some(user.id.clone()), "verify_email");
        self.audit("email_verification_sent", Some(&user.id), None, "{}").await?;
        Ok(Ok(email))
    }

    /// The account page's new address: stored unverified (tokens then say `email_verified`
    /// false), a notice to the old address, and a verification link to the new one. `Err`: why
    /// not, for the page. Audited (`email_changed`).
    pub async fn change_email(&self, user: &UserRecord, new: &str) -> Result<Result<String, String>, ServiceError> {
        let Some(new) = email_address(new) else { return Ok(Err("That is not an email address.".into())) };
        if user.email.as_deref() == Some(new.as_str()) {
            return Ok(Err(format!("{new} is your address already.")));
        }
        let now = self.now();
        let changed = UserRecord { email: Some(new.clone()), updated_at: now, ..user.clone() };
        if !self.store.update_user(&changed).await? {
            return Ok(Err("Your account was not found.".into()));
        }
        // Links to the old address verify nothing now.
        self.store.delete_user_tokens(&user.id, Link::VerifyEmail.purpose()).await?;
        self.audit("email_changed", Some(&user.id), None, &json!({ "from": user.email, "to": new }).to_string()).await?;
        if let Some(old) = &user.email {
            self.notify(user, Notice::EmailChanged { old, new: &new });
        }
        let Some(changed) = self.store.find_user(&user.id).await? else { return Ok(Err("Your account was not found.".into())) };
        Ok(Ok(match self.send_verification(&changed).await? {
            Ok(_) => format!("Your email address is now {new}. We sent a link to it: open it to confirm the address."),
            Err(_) if !self.mail_enabled() => format!("Your email address is now {new}."),
            Err(why) => format!("Your email address is now {new}. {why}"),
        }))
    }

    /// A verification link: the address it went to is verified, if it is still the account's.
    /// Returns the user and the address. Audited (`email_verified`).
    pub async fn verify_email(&self, token: &str) -> Result<Result<(UserRecord, String), LinkRefused>, ServiceError> {
        let Some(hash) = token_hash(token) else { return Ok(Err(LinkRefused::Invalid)) };
        let Some(rec) = self.store.take_user_token(&hash, Link::VerifyEmail.purpose(), self.now()).await? else { return Ok(Err(LinkRefused::Invalid)) };
        let Ok(data) = serde_json::from_str::<LinkData>(&rec.data) else { return Ok(Err(LinkRefused::Invalid)) };
        let Some(user) = self.active_user(&rec.user_id).await? else { return Ok(Err(LinkRefused::Invalid)) };
        if !self.store.update_user_email_verified(&user.id, &data.email).await? {
            return Ok(Err(LinkRefused::Stale));
        }
        self.audit("email_verified", Some(&user.id), None, &json!({ "email": data.email }).to_string()).await?;
        Ok(Ok((user, data.email)))
    }

    // --- Self-registration ---------------------------------------------------------------------

    /// The registration form (`--self-registration`). Nothing is made yet: the address gets a
    /// link (24 hours) that makes the account, so nobody can use an address they do not read,
    /// and a username is not taken until then. The answer is the same whether or not the
    /// username or the address has an account already: the address is told so by mail
    /// instead. Throttled per client address (said) and per address mailed (not said).
    /// Audited (`registration_started`, `registration_refused`).
    pub async fn register(&self, r: Registration, address: &str) -> Result<Result<String, RegisterRefused>, ServiceError> {
        if !self.config.self_registration || !self.mail_enabled() {
            return Ok(Err(RegisterRefused::Invalid("Registration is closed.".into())));
        }
        let Some(email) = email_address(&r.email) else { return Ok(Err(RegisterRefused::Invalid("Enter your email address.".into()))) };
        let username = r.username.trim().to_string();
        if username.is_empty() || username.chars().count() > 64 || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Ok(Err(RegisterRefused::Invalid("Choose a username of 1 to 64 characters, without spaces.".into())));
        }
        let name = r.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        if name.as_ref().is_some_and(|n| n.chars().count() > 128 || n.chars().any(char::is_control)) {
            return Ok(Err(RegisterRefused::Invalid("Your name can have at most 128 characters.".into())));
        }
        if let Err(e) = self.config.password_policy.check(&r.password, admin::Factors::PasswordOnly) {
            return Ok(Err(RegisterRefused::Invalid(sentence(&e.to_string()))));
        }
        let now = self.now();
        if let Err(retry_after) = self.take_address_attempt("register", address).await? {
            self.store.create_audit_event("registration_throttled", &json!({ "address": address, "retry_after": retry_after }).to_string(), now).await?;
            return Ok(Err(RegisterRefused::Throttled { retry_after }));
        }
        let password_hash = match admin::hash_new_password(&self.config.password_policy, &self.config.argon2, r.password, admin::Factors::PasswordOnly).await {
            Ok(h) => h,
            Err(AdminError::Busy) => return Ok(Err(RegisterRefused::Busy)),
            Err(AdminError::Store(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(RegisterRefused::Invalid(sentence(&e.to_string())))),
        };
        let refused = |reason: &str| json!({ "address": address, "username": username, "reason": reason }).to_string();
        if self.take_recipient_attempt(&email).await?.is_err() {
            self.store.create_audit_event("registration_refused", &refused("throttled"), now).await?;
            return Ok(Ok(email));
        }
        let issuer = &self.config.issuer;
        if let Some(existing) = self.store.find_users_by_email(&email).await?.into_iter().next() {
            self.send_later(already_registered_mail(issuer, &existing, &email), Some(existing.id.clone()), "already_registered");
            self.audit("registration_refused", Some(&existing.id), None, &refused("email_taken")).await?;
            return Ok(Ok(email));
        }
        if self.store.find_user_by_username(&username).await?.is_some() {
            self.send_later(username_taken_mail(issuer, &username, &email), None, "username_taken");
            self.store.create_audit_event("registration_refused", &refused("username_taken"), now).await?;
            return Ok(Ok(email));
        }
        let data = LinkData { email: email.clone(), account: Some(PendingAccount { username: username.clone(), name, password_hash }) };
        let pending_id = format!("pending:{}", self.random.id());
        let url = create_link(&*self.store, &*self.random, issuer, Link::Register, &pending_id, &data, now).await?;
        self.send_later(register_mail(issuer, &username, &email, &url), None, "register");
        self.store.create_audit_event("registration_started", &json!({ "address": address, "username": username }).to_string(), now).await?;
        Ok(Ok(email))
    }

    /// A registration's link: the account is made, enabled, its address verified (through
    /// `update_user_email_verified`, as every verification), unless its username or address
    /// got an account meanwhile. Nobody is signed in. Audited (`user_registered`).
    pub async fn confirm_registration(&self, token: &str) -> Result<Result<UserRecord, LinkRefused>, ServiceError> {
        if !self.config.self_registration {
            return Ok(Err(LinkRefused::Invalid));
        }
        let Some(hash) = token_hash(token) else { return Ok(Err(LinkRefused::Invalid)) };
        let now = self.now();
        let Some(rec) = self.store.take_user_token(&hash, Link::Register.purpose(), now).await? else { return Ok(Err(LinkRefused::Invalid)) };
        let Ok(LinkData { email, account: Some(account) }) = serde_json::from_str::<LinkData>(&rec.data) else { return Ok(Err(LinkRefused::Invalid)) };
        if !self.store.find_users_by_email(&email).await?.is_empty() {
            return Ok(Err(LinkRefused::Taken(format!("{email} has an account already: sign in with it, or choose a new password if you forgot it."))));
        }
        let req = NewUser { username: account.username.clone(), email: Some(email.clone()), name: account.name, ..Default::default() };
        let user = match admin::create_user_with_hash(&*self.store, req, account.password_hash, now).await {
            Ok(u) => u,
            Err(AdminError::Invalid(_)) | Err(AdminError::Conflict { .. }) => {
                return Ok(Err(LinkRefused::Taken(format!("The username {} was taken meanwhile. Register again with another.", account.username))));
            }
            Err(AdminError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(OAuthError::server_error(e.to_string()).into()),
        };
        self.store.update_user_email_verified(&user.id, &email).await?;
        self.audit("user_registered", Some(&user.id), None, &json!({ "username": user.username }).to_string()).await?;
        Ok(Ok(self.store.find_user(&user.id).await?.unwrap_or(user)))
    }

    // --- Notices -------------------------------------------------------------------------------

    /// Mail `user` a short notice of what happened to their account, when they have an address
    /// (or, for [`Notice::EmailChanged`], had one) and a mailer is configured: sent on a task of
    /// its own, never failing what it reports on. One line wherever a notice is due, e.g.
    /// `svc.notify(&user, Notice::FactorAdded { kind: "passkey", name })`.
    pub fn notify(&self, user: &UserRecord, notice: Notice<'_>) {
        if !self.mail_enabled() {
            return;
        }
        let to = match notice {
            Notice::EmailChanged { old, .. } => Some(old),
            _ => user.email.as_deref(),
        };
        let Some(to) = to else { return };
        let what = match notice {
            Notice::FactorAdded { .. } => "notice_factor_added",
            Notice::AppGranted { .. } => "notice_app_granted",
            Notice::EmailChanged { .. } => "notice_email_changed",
        };
        self.send_later(notice_mail(&self.config.issuer, user, to, notice), Some(user.id.clone()), what);
    }

    /// The notice of an app's first access (consent granted where there was none), from
    /// [`super::authorize`]: a read failure only means no notice.
    pub(crate) async fn notify_first_grant(&self, user_id: &str, client_id: &str, scope: &str) {
        if !self.mail_enabled() {
            return;
        }
        let Ok(Some(user)) = self.store.find_user(user_id).await else { return };
        let app = match self.cached_client(client_id).await {
            Ok(Some(c)) => c.name.clone(),
            _ => client_id.to_string(),
        };
        self.notify(&user, Notice::AppGranted { app: &app, scope });
    }
}

/// A service message as a sentence for a page: a capital first letter and a full stop.
fn sentence(msg: &str) -> String {
    let mut c = msg.chars();
    let mut s = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// "N seconds" or, from a minute on, "N minutes" (rounded up).
fn wait_text(secs: i64) -> String {
    match secs {
        ..=1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        _ => match (secs + 59) / 60 {
            1 => "1 minute".into(),
            m => format!("{m} minutes"),
        },
    }
}

impl From<StoreError> for InviteError {
    fn from(e: StoreError) -> Self {
        Self::Admin(AdminError::Store(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_have_both_parts_and_escape_html() {
        let user = UserRecord {
            id: "u".into(),
            username: "<b>al</b>".into(),
            email: Some("a@x.example".into()),
            name: None,
            password_hash: String::new(),
            created_at: 0,
            profile: Default::default(),
            updated_at: 0,
            disabled_at: None,
            is_admin: false,
            require_mfa: false,
            email_verified: false,
        };
        let m = reset_mail("https://id.example", &user, "a@x.example", "https://id.example/password/reset?token=abc&x=\"1\"");
        assert_eq!(m.subject, "Reset your password for id.example");
        assert!(m.text.contains("https://id.example/password/reset?token=abc&x=\"1\"\n"), "{}", m.text);
        assert!(m.html.contains("&lt;b&gt;al&lt;/b&gt;") && !m.html.contains("<b>al"), "{}", m.html);
        assert!(m.html.contains("href=\"https://id.example/password/reset?token=abc&amp;x=&quot;1&quot;\""), "{}", m.html);
        let n = notice_mail("https://id.example", &user, "a@x.example", Notice::FactorAdded { kind: "totp", name: "Phone" });
        assert!(n.text.contains("An authenticator app named \u{201c}Phone\u{201d}"), "{}", n.text);
        assert!(n.text.contains("https://id.example/account"));
    }

    #[test]
    fn sentences_and_waits() {
        assert_eq!(sentence("the password must be 8 to 1024 characters"), "The password must be 8 to 1024 characters.");
        assert_eq!(wait_text(90), "2 minutes");
        assert_eq!(Link::Reset.lifetime(), 1800);
        assert_eq!(token_hash(""), None);
        assert_eq!(token_hash(&"x".repeat(129)), None);
    }
}
