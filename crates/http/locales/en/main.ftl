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
