# Tessera's pages in English: the fallback catalog. Every key here must be in every other
# catalog (the test i18n::tests::catalogs_are_complete).

continue = Continue
sign-out = Sign out
back-to-account = Back to your account

## Sign-in
login-title = Sign in
login-to-continue = to continue to { $client }
login-username = Username
login-password = Password
login-sign-in = Sign in
login-account-link = Your account
login-account-hint = the apps you allowed, where you are signed in.
login-enter-both = Enter your username and password.
login-incorrect = Incorrect username or password.
login-incorrect-wait = Incorrect username or password. Try again in { $wait }.
login-throttled = Too many failed sign-in attempts. Try again in { $wait }.
login-disabled = This account is disabled. Ask your administrator.
login-busy = The server is busy. Try again in a moment.
wait-seconds = { $n ->
    [one] 1 second
   *[other] { $n } seconds
}
wait-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
}
passkey-sign-in = Sign in with a passkey

## Consent
consent-title = Allow access?
consent-heading = { $client } wants access to your account
consent-signed-in-as = Signed in as { $user }
consent-device-notice = A device is asking for access. Only allow it if you started this on your own device and it shows this code:
consent-will-be-able = If you allow it, { $client } will be able to:
consent-already-allowed = You already allowed it to:
consent-change-mind = It will not see your password. You can change your mind later: remove its access on
consent-account-link = your account page.
consent-deny = Deny
consent-allow = Allow
consent-choose = Choose Allow or Deny
consent-choose-message = The form did not say whether you allow the request.

## Devices (RFC 8628)
device-title = Connect a device
device-lead = Enter the code shown on your device.
device-code = Code
device-connected = Device connected
device-connected-message = You can close this page and return to your device.
device-denied = Request denied
device-denied-message = The device was not given access. You can close this page.

## Errors
error-code = Error code:
error-go-back = Go back to the application you came from and try again.
request-expired = This sign-in request has expired
request-expired-message = The request was not found or has expired, or cookies are blocked for this site.
form-expired = The form has expired
form-expired-message = Reload the page and try again.

## Sign-out
logout-title = Sign out
logout-heading = Sign out?
logout-lead = You will be signed out of { $product }, and applications that support it will be told.

## Home
home-lead = An OAuth 2.0 authorization server.
home-issuer = Issuer:
home-metadata = Authorization server metadata
home-jwks = Public signing keys (JWKS)
home-account = Your account

## Form post response mode
form-post-title = Returning to the application
form-post-continue = Continue to the application.

## Two-step sign-in
two-step-title = Two-step sign-in
two-step-use-passkey = Use your passkey
two-step-enter-code = Enter the code from your authenticator app.
two-step-code = Code
two-step-verify = Verify
two-step-lost-device = Lost your device? Enter one of your recovery codes instead.
two-step-passkey-lead = Use your passkey to finish signing in.
two-step-setup-required = This sign-in needs a second step. Set up an authenticator app now.
two-step-turn-on = Turn on two-step sign-in
two-step-expired = This sign-in has expired
two-step-expired-message = Start again from the app you were signing in to, or from your account page.
two-step-enter-app-code = Enter the code from your authenticator app.
two-step-wrong = That code is not right, or it was used already.
two-step-wrong-wait = That code is not right, or it was used already. Try again in { $wait }.
two-step-throttled = Too many wrong codes. Try again in { $wait }.
totp-step-open-app = Open your authenticator app (for example Google Authenticator, Microsoft Authenticator, 1Password or Aegis) and add an account.
totp-step-scan = Scan this code:
totp-step-or-key = or enter this key:
totp-setup-link = Setup link
totp-step-enter-code = Enter the 6-digit code the app shows.
totp-name = Name
totp-name-hint = (to tell your devices apart)
totp-default-name = Authenticator app
totp-add-title = Add an authenticator app
totp-add = Add
recovery-title = Your recovery codes
recovery-lead = If you lose your device, each of these codes signs you in once instead of a code from your app. They are shown only now: write them down or save them somewhere safe.
recovery-continue = I saved them — continue

## Sign-in, accounts, mail
register-new-here = New here?
register-title = Create an account
forgot-title = Forgot your password?
console-title = { $product } admin
console-signin-lead = Sign in with an administrator's account.
account-title = Your account
account-signin-lead = Sign in to see and manage your account.
forgot-lead = Enter your username or email address. If an account exists, we send a link to its email address to choose a new password.
forgot-who = Username or email address
forgot-send = Send me a link
back-to-sign-in = Back to sign-in
password-new = New password
password-again = New password again
password-at-least = (at least { $n } characters)
register-lead = We send a link to your email address: the account is ready once you open it.
email-address = Email address
register-password-again = Password again
register-button = Create my account
register-name = Your name
optional = (optional)
register-have-account = Have an account?

## The account page
account-email = Email
account-none = none
account-verified = verified
account-unverified = not verified
account-confirm-email = Confirm that the address is yours: we mail you a link.
account-send-verification = Send verification link
account-apps = Apps with access to your account
account-no-apps = No app has access to your account.
account-app = App
account-it-can = It can
account-since = Since
account-remove-access = Remove access
account-sessions = Where you are signed in
account-device = Device
account-address = Address
account-signed-in = Signed in
account-last-used = Last used
account-how = How
account-this-browser = this browser
account-mfa-required = Your administrator requires a second step at sign-in: set one up now.
account-mfa-none = Only your password protects your account. Add an authenticator app: sign-in then asks for a code from it too.
account-kind = Kind
account-added = Added
account-remove = Remove
account-recovery-left = { $n ->
    [one] 1 recovery code left.
   *[other] { $n } recovery codes left.
}
account-new-recovery = Make new recovery codes
account-passkeys = Passkeys
account-passkeys-unavailable = Passkeys are not available on this server:
account-passkeys-lead = A passkey signs you in with your device's screen lock or a security key, without a password, and counts as two steps.
account-passkey-name = Passkey name
account-passkey-default = Passkey
account-add-passkey = Add a passkey
account-passkey-js = Adding a passkey needs JavaScript.
account-change-email = Change your email address
account-new-email = New email address
account-current-password = Current password
account-change-email-button = Change email address
account-email-unverified-until = The new address is unverified until you open the link we mail to it.
account-change-password = Change your password
account-change-password-button = Change password
account-password-effect = Changing it signs you out everywhere else and makes every app ask you again.
account-events = Security events
account-no-events = None yet.

## Security events on the account page
event-sign-in = Signed in
event-sign-in-failed = A sign-in failed (wrong password)
event-sign-in-refused = A sign-in was refused: the account is disabled
event-consent-granted = Gave an app access
event-consent-removed = Removed an app's access
event-admin-password-set = Password changed
event-admin-user-disabled = Account disabled by an administrator
event-admin-user-enabled = Account enabled by an administrator
event-refresh-reuse = A reused token was detected and the app's access ended
event-admin-sessions-ended = Signed out everywhere
event-second-factor = Used a second factor to sign in
event-second-factor-failed = A wrong second-factor code was entered
event-second-factor-throttled = Too many wrong second-factor codes
event-recovery-codes-created = Made new recovery codes
event-admin-mfa-reset = Second factors removed by an administrator
event-password-reset-requested = A password reset link was asked for
event-password-reset = Password changed with a reset link
event-invitation-accepted = Chose a password from the invitation
event-email-verification-sent = Asked for a verification link
event-user-registered = Account created
event-admin-user-invited = Invited by an administrator
event-mail-failed = A mail to you could not be sent
event-from = { $what } from { $address }
event-mfa-added = Added a second factor ({ $name })
event-mfa-removed = Removed a second factor ({ $name })
event-email-verified = Email address { $email } verified
event-email-changed = Email address changed to { $email }

## Scopes OpenID Connect defines (what the consent page says)
scope-openid = Sign you in and know who you are
scope-profile = See your name and basic profile
scope-email = See your email address
scope-address = See your postal address
scope-phone = See your phone number
scope-offline_access = Stay connected while you are away (offline access)
scope-groups = See the groups you belong to

## Mailed links
link-reset-invalid = The link has expired or was used already. Ask for a new one.
link-ask-new = Ask for a new link
link-invite-invalid = The invitation has expired or was used already. Ask your administrator for a new one.
link-verify-invalid = The link has expired or was used already. Ask for a new one on your account page.
link-register-invalid = The link has expired or was used already. Register again.
link-register-again = Register again
link-does-not-work = This link does not work
mail-check = Check your mail
forgot-sent = If an account exists for that name and has an email address, we sent a link to it. Open it within 30 minutes to choose a new password.
invite-welcome = Welcome
invite-lead = Choose the password of your account
invite-button = Set my password
reset-title = Choose a new password
reset-lead = The new password of your account
reset-button = Change my password
passwords-differ = The passwords do not match.
account-ready = Your account is ready
password-changed = Password changed
email-confirmed = Email address confirmed
link-old-address = This link is for an old address
link-old-address-message = The account's email address has changed since the link was sent. Ask for a new link on your account page.
current-password-wrong = The current password is not right.
account-not-found = Your account was not found.
register-not-made = The account was not made
too-many-requests = Too many requests. Try again in { $wait }.
invite-done = Your password is set. Sign in as { $user } with it.
reset-done = The password of { $user } is changed, and every session of the account has ended. Sign in with the new password.
verify-sent = We sent a link to { $email }: open it within 24 hours to confirm the address.
register-sent = We sent a link to { $email }. Open it within 24 hours to finish creating your account; until then it cannot be used.
register-done = Your address is confirmed. Sign in as { $user } with the password you chose.
