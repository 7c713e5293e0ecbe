//! Outgoing mail: messages rendered from the templates in `shared/templates/` (text and HTML),
//! sent through SES v2. `Mailer` is a trait so handlers are tested with `RecordingMailer`.
//! Message bodies can carry tokens: they are never logged.

pub mod invitation;
pub mod links;

use crate::domain::Email;
use async_trait::async_trait;
use links::PLATFORM_NAME;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("email could not be sent: {0}")]
pub struct MailError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError>;
}

pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        SesMailer {
            client,
            from: from.into(),
        }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, m: &EmailMessage) -> Result<(), MailError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError(Box::new(e)))
        };
        let message = Message::builder()
            .subject(content(&m.subject)?)
            .body(
                Body::builder()
                    .text(content(&m.text)?)
                    .html(content(&m.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(m.to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError(crate::runtime::aws::sdk_cause(e)))?;
        Ok(())
    }
}

/// Keeps sent messages in memory, for tests.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct RecordingMailer {
    sent: std::sync::Mutex<Vec<EmailMessage>>,
}

#[cfg(any(test, feature = "testing"))]
impl RecordingMailer {
    pub fn sent(&self) -> Vec<EmailMessage> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.clone());
        Ok(())
    }
}

/// The mail templates (`shared/templates/`), compiled once per process. minijinja escapes
/// every value in the `.html` ones, and never renders a value as a template, so a tenant name
/// that contains `{{link}}` stays text.
fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in [
            (
                "password-reset.txt",
                include_str!("../../templates/password-reset.txt"),
            ),
            (
                "password-reset.html",
                include_str!("../../templates/password-reset.html"),
            ),
            (
                "password-changed.txt",
                include_str!("../../templates/password-changed.txt"),
            ),
            (
                "password-changed.html",
                include_str!("../../templates/password-changed.html"),
            ),
            (
                "redirect-origins-changed.txt",
                include_str!("../../templates/redirect-origins-changed.txt"),
            ),
            (
                "redirect-origins-changed.html",
                include_str!("../../templates/redirect-origins-changed.html"),
            ),
            (
                "invitation.txt",
                include_str!("../../templates/invitation.txt"),
            ),
            (
                "invitation.html",
                include_str!("../../templates/invitation.html"),
            ),
            (
                "access-granted.txt",
                include_str!("../../templates/access-granted.txt"),
            ),
            (
                "access-granted.html",
                include_str!("../../templates/access-granted.html"),
            ),
            (
                "email-change-verify.txt",
                include_str!("../../templates/email-change-verify.txt"),
            ),
            (
                "email-change-verify.html",
                include_str!("../../templates/email-change-verify.html"),
            ),
            (
                "email-change-requested.txt",
                include_str!("../../templates/email-change-requested.txt"),
            ),
            (
                "email-change-requested.html",
                include_str!("../../templates/email-change-requested.html"),
            ),
            (
                "email-in-use.txt",
                include_str!("../../templates/email-in-use.txt"),
            ),
            (
                "email-in-use.html",
                include_str!("../../templates/email-in-use.html"),
            ),
            (
                "factors-reset.txt",
                include_str!("../../templates/factors-reset.txt"),
            ),
            (
                "factors-reset.html",
                include_str!("../../templates/factors-reset.html"),
            ),
            (
                "impersonation.txt",
                include_str!("../../templates/impersonation.txt"),
            ),
            (
                "impersonation.html",
                include_str!("../../templates/impersonation.html"),
            ),
            (
                "invitation-pending.txt",
                include_str!("../../templates/invitation-pending.txt"),
            ),
            (
                "invitation-pending.html",
                include_str!("../../templates/invitation-pending.html"),
            ),
        ] {
            env.add_template(name, source)
                .expect("the mail templates compile (a unit test renders each)");
        }
        env
    })
}

/// Renders `<name>.txt` and `<name>.html` with `vars`. A template that cannot render is an
/// error of this build, reported rather than sent half-made.
fn message(
    to: &Email,
    subject: String,
    name: &str,
    vars: &[(&str, &str)],
) -> Result<EmailMessage, MailError> {
    let context: std::collections::BTreeMap<&str, &str> = vars.iter().copied().collect();
    let render = |ext: &str| {
        templates()
            .get_template(&format!("{name}.{ext}"))
            .and_then(|t| t.render(&context))
            .map_err(|e| MailError(Box::new(e)))
    };
    Ok(EmailMessage {
        to: to.clone(),
        subject,
        text: render("txt")?,
        html: render("html")?,
    })
}

/// The reset-link message. `link` carries the token in its fragment.
pub fn password_reset(
    to: &Email,
    tenant_name: &str,
    link: &str,
    expires_minutes: i64,
) -> Result<EmailMessage, MailError> {
    let minutes = expires_minutes.to_string();
    let vars = [
        ("tenant_name", tenant_name),
        ("link", link),
        ("expires_minutes", minutes.as_str()),
    ];
    message(
        to,
        format!("Reset your {tenant_name} password"),
        "password-reset",
        &vars,
    )
}

/// The "your password was changed" notice sent after a reset.
pub fn password_changed(to: &Email, tenant_name: &str) -> Result<EmailMessage, MailError> {
    message(
        to,
        format!("Your {tenant_name} password was changed"),
        "password-changed",
        &[("tenant_name", tenant_name)],
    )
}

/// Asks the owner of a new address to confirm it (`link` carries the single-use token).
pub fn email_change_verify(to: &Email, link: &str) -> Result<EmailMessage, MailError> {
    message(
        to,
        format!("Confirm your new {PLATFORM_NAME} address"),
        "email-change-verify",
        &[("platform", PLATFORM_NAME), ("link", link)],
    )
}

/// Tells the current address that a change to `new` (shown masked) was asked for.
pub fn email_change_requested(to: &Email, new: &Email) -> Result<EmailMessage, MailError> {
    let masked = mask(new);
    message(
        to,
        format!("A change of your {PLATFORM_NAME} address was requested"),
        "email-change-requested",
        &[("platform", PLATFORM_NAME), ("masked", masked.as_str())],
    )
}

/// Tells the owner of an address already in use that someone asked to move onto it.
pub fn email_in_use(to: &Email) -> Result<EmailMessage, MailError> {
    message(
        to,
        format!("Your address was given for another {PLATFORM_NAME} account"),
        "email-in-use",
        &[("platform", PLATFORM_NAME)],
    )
}

/// `a***@example.com`: enough for the owner to recognise, not enough to read it off a mail.
fn mask(email: &Email) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or(("", email.as_str()));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// Tells a user that an operator removed their second factors.
pub fn factors_reset(to: &Email) -> Result<EmailMessage, MailError> {
    message(
        to,
        "Your second factor was reset".to_string(),
        "factors-reset",
        &[],
    )
}

/// What an impersonation notice tells a tenant's owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpersonationNotice {
    /// An operator asks for write access as one of the tenant's users.
    ApprovalRequested,
    Started,
    Ended,
}

/// The people and facts an impersonation notice names.
pub struct ImpersonationFacts<'a> {
    pub tenant_name: &'a str,
    pub operator: &'a Email,
    pub user: &'a Email,
    pub write: bool,
    pub reason: &'a str,
    /// Unix seconds: when the token expires (started), when the request lapses (asked for).
    pub until: i64,
}

/// Tells one of a tenant's owners that an operator asked to act, started acting or stopped
/// acting as one of the tenant's users.
pub fn impersonation(
    to: &Email,
    notice: ImpersonationNotice,
    f: &ImpersonationFacts<'_>,
) -> Result<EmailMessage, MailError> {
    let until = time::OffsetDateTime::from_unix_timestamp(f.until)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| f.until.to_string());
    let (subject, what, when) = match notice {
        ImpersonationNotice::ApprovalRequested => (
            format!("An operator asks for write access to {}", f.tenant_name),
            format!(
                "A platform operator asks for write access while acting as one of your users in {}. Nothing changes unless an owner approves it in the console (Tenant, Impersonation approvals).",
                f.tenant_name
            ),
            format!("The request lapses at {until} if nobody decides."),
        ),
        ImpersonationNotice::Started => (
            format!("An operator is acting as a user of {}", f.tenant_name),
            format!(
                "A platform operator started acting as one of your users in {}.",
                f.tenant_name
            ),
            format!("It ends at {until} at the latest."),
        ),
        ImpersonationNotice::Ended => (
            format!("An operator stopped acting as a user of {}", f.tenant_name),
            format!(
                "The platform operator stopped acting as one of your users in {}.",
                f.tenant_name
            ),
            String::new(),
        ),
    };
    let access = if f.write {
        "read and write (approved by an owner)"
    } else {
        "read-only"
    };
    message(
        to,
        subject.clone(),
        "impersonation",
        &[
            ("subject", &subject),
            ("what", &what),
            ("tenant_name", f.tenant_name),
            ("operator", f.operator.as_str()),
            ("user", f.user.as_str()),
            ("access", access),
            ("reason", f.reason),
            ("when", &when),
        ],
    )
}

/// The most owners one notice goes to.
pub const MAX_OWNER_NOTICES: usize = 25;

/// Mails `make`'s message to each active owner of `tenant` (at most [`MAX_OWNER_NOTICES`]).
/// The first failure to send is the answer; the number of owners mailed otherwise.
pub async fn notify_owners(
    store: &dyn crate::store::Store,
    mailer: &dyn Mailer,
    tenant: &crate::domain::tenant::Tenant,
    make: impl Fn(&Email) -> Result<EmailMessage, MailError>,
) -> Result<usize, MailError> {
    let store_error = |e: crate::store::StoreError| MailError(Box::new(e));
    let mut owners: Vec<_> = store
        .tenant_members(&tenant.id)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|(_, role)| *role == crate::domain::Role::Owner)
        .map(|(id, _)| id)
        .collect();
    owners.truncate(MAX_OWNER_NOTICES);
    let mut sent = 0;
    for u in store.users_by_ids(&owners).await.map_err(store_error)? {
        if u.is_active() {
            mailer.send(&make(&u.email)?).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Tells a tenant's owners and admins that its redirect origins (where its mailed links
/// point) were changed, and by whom.
pub fn redirect_origins_changed(
    to: &Email,
    tenant_name: &str,
    changed_by: &Email,
    origins: &[crate::domain::tenant::RedirectOrigin],
) -> Result<EmailMessage, MailError> {
    let list = if origins.is_empty() {
        "(none: links use the platform's own address)".to_string()
    } else {
        origins
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    message(
        to,
        format!("The redirect origins of {tenant_name} were changed"),
        "redirect-origins-changed",
        &[
            ("tenant_name", tenant_name),
            ("changed_by", changed_by.as_str()),
            ("origins", &list),
        ],
    )
}

/// An invitation to a tenant or partner: `link` carries the single-use token in its fragment.
pub fn invitation(
    to: &Email,
    place: &str,
    role: &str,
    invited_by: &Email,
    link: &str,
    expires_days: i64,
) -> Result<EmailMessage, MailError> {
    let days = expires_days.to_string();
    // Nobody invites themself: the platform's first operator is invited by no one.
    let invited_by = if invited_by == to {
        ""
    } else {
        invited_by.as_str()
    };
    message(
        to,
        format!("You are invited to {place}"),
        "invitation",
        &[
            ("place", place),
            ("role", role),
            ("invited_by", invited_by),
            ("link", link),
            ("expires_days", days.as_str()),
        ],
    )
}

/// Tells an existing user they were given access to a tenant or partner.
pub fn access_granted(
    to: &Email,
    place: &str,
    role: &str,
    invited_by: &Email,
) -> Result<EmailMessage, MailError> {
    message(
        to,
        format!("You now have access to {place}"),
        "access-granted",
        &[
            ("place", place),
            ("role", role),
            ("invited_by", invited_by.as_str()),
        ],
    )
}

/// An existing account's invitation, which changes nothing until they accept it signed in
/// (at `link`, the console).
pub fn invitation_pending(
    to: &Email,
    place: &str,
    role: &str,
    invited_by: &Email,
    link: &str,
    expires_days: i64,
) -> Result<EmailMessage, MailError> {
    let days = expires_days.to_string();
    message(
        to,
        format!("An invitation to {place}"),
        "invitation-pending",
        &[
            ("place", place),
            ("role", role),
            ("invited_by", invited_by.as_str()),
            ("link", link),
            ("expires_days", days.as_str()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_mail_has_link_tenant_and_no_referrer_and_escapes_html() {
        let to = Email::parse("a@example.com").unwrap();
        let m = password_reset(
            &to,
            "Acme <Labs>",
            "https://app.example.com/reset-password#token=abc",
            30,
        )
        .unwrap();
        assert_eq!(m.subject, "Reset your Acme <Labs> password");
        assert!(m
            .text
            .contains("https://app.example.com/reset-password#token=abc"));
        assert!(m.text.contains("Acme <Labs>") && m.text.contains("30 minutes"));
        assert!(m
            .html
            .contains(r#"<meta name="referrer" content="no-referrer">"#));
        assert!(m.html.contains("Acme &lt;Labs&gt;") && !m.html.contains("Acme <Labs>"));
        assert!(!m.html.contains("{{") && !m.text.contains("{{"));
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_stays_text() {
        let to = Email::parse("a@example.com").unwrap();
        let m =
            password_reset(&to, "{{link}} Corp", "https://x.example.com/r#token=t", 30).unwrap();
        assert!(m.text.contains("{{link}} Corp"), "{}", m.text);
        assert_eq!(m.text.matches("token=t").count(), 1);
    }

    #[test]
    fn every_template_renders_its_values_escaped_in_html() {
        let to = Email::parse("a@example.com").unwrap();
        let by = Email::parse("b@example.com").unwrap();
        let origin =
            crate::domain::tenant::RedirectOrigin::parse("https://x.example.com", false).unwrap();
        let messages = [
            password_reset(&to, "<T>", "https://x.example.com/r#token=t", 30).unwrap(),
            password_changed(&to, "<T>").unwrap(),
            redirect_origins_changed(&to, "<T>", &by, &[origin]).unwrap(),
            invitation(
                &to,
                "<T>",
                "admin",
                &by,
                "https://x.example.com/i#token=t",
                7,
            )
            .unwrap(),
            access_granted(&to, "<T>", "member", &by).unwrap(),
            impersonation(
                &to,
                ImpersonationNotice::Started,
                &ImpersonationFacts {
                    tenant_name: "<T>",
                    operator: &by,
                    user: &to,
                    write: false,
                    reason: "<T> ticket 12",
                    until: 1_800_000_000,
                },
            )
            .unwrap(),
        ];
        for m in messages {
            assert!(
                m.text.contains("<T>") && m.html.contains("&lt;T&gt;"),
                "{}",
                m.subject
            );
            assert!(!m.html.contains("<T>"), "{}", m.subject);
        }
    }

    #[test]
    fn the_email_change_mails_render_and_mask_the_new_address() {
        let old = Email::parse("old@example.com").unwrap();
        let new = Email::parse("newname@example.org").unwrap();
        let m = email_change_requested(&old, &new).unwrap();
        assert!(m.text.contains("n***@example.org"), "{}", m.text);
        assert!(!m.text.contains("newname"));
        let m = email_change_verify(&new, "https://x/verify-email#token=t").unwrap();
        assert_eq!(m.text.matches("token=t").count(), 1);
        assert!(email_in_use(&new)
            .unwrap()
            .html
            .contains("already has an account"));
    }

    #[test]
    fn a_self_invitation_names_no_inviter_and_the_reset_notice_renders() {
        let to = Email::parse("a@example.com").unwrap();
        let m = invitation(
            &to,
            "the platform",
            "operator",
            &to,
            "https://x/i#token=t",
            7,
        )
        .unwrap();
        assert!(
            m.text.contains("You are invited to the platform"),
            "{}",
            m.text
        );
        assert!(!m.text.contains("a@example.com invited"));
        let m = factors_reset(&to).unwrap();
        assert!(m.text.contains("second factor") && m.html.contains("second factor"));
    }

    #[test]
    fn changed_mail_names_the_tenant() {
        let m = password_changed(&Email::parse("a@example.com").unwrap(), "Acme").unwrap();
        assert!(m.subject.contains("Acme") && m.text.contains("Acme") && m.html.contains("Acme"));
    }
}
