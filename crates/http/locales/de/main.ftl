# Tessera auf Deutsch. Jeder Schlüssel des englischen Katalogs steht auch hier.

continue = Weiter
sign-out = Abmelden
back-to-account = Zurück zu Ihrem Konto

## Anmeldung
login-title = Anmelden
login-to-continue = um mit { $client } fortzufahren
login-username = Benutzername
login-password = Passwort
login-sign-in = Anmelden
login-account-link = Ihr Konto
login-account-hint = die Apps, denen Sie Zugriff gegeben haben, und wo Sie angemeldet sind.
login-enter-both = Geben Sie Benutzername und Passwort ein.
login-incorrect = Benutzername oder Passwort ist falsch.
login-incorrect-wait = Benutzername oder Passwort ist falsch. Versuchen Sie es in { $wait } erneut.
login-throttled = Zu viele fehlgeschlagene Anmeldeversuche. Versuchen Sie es in { $wait } erneut.
login-disabled = Dieses Konto ist gesperrt. Wenden Sie sich an Ihre Administration.
login-busy = Der Server ist ausgelastet. Versuchen Sie es gleich noch einmal.
wait-seconds = { $n ->
    [one] 1 Sekunde
   *[other] { $n } Sekunden
}
wait-minutes = { $n ->
    [one] 1 Minute
   *[other] { $n } Minuten
}
passkey-sign-in = Mit einem Passkey anmelden

## Zustimmung
consent-title = Zugriff erlauben?
consent-heading = { $client } möchte auf Ihr Konto zugreifen
consent-signed-in-as = Angemeldet als { $user }
consent-device-notice = Ein Gerät bittet um Zugriff. Erlauben Sie ihn nur, wenn Sie dies auf Ihrem eigenen Gerät begonnen haben und es diesen Code zeigt:
consent-will-be-able = Wenn Sie zustimmen, kann { $client }:
consent-already-allowed = Bereits erlaubt haben Sie:
consent-change-mind = Ihr Passwort bekommt die App nicht zu sehen. Sie können es sich später anders überlegen und den Zugriff entfernen auf
consent-account-link = Ihrer Kontoseite.
consent-deny = Ablehnen
consent-allow = Erlauben
consent-choose = Erlauben oder Ablehnen wählen
consent-choose-message = Das Formular hat nicht gesagt, ob Sie die Anfrage erlauben.

## Geräte (RFC 8628)
device-title = Gerät verbinden
device-lead = Geben Sie den Code ein, den Ihr Gerät anzeigt.
device-code = Code
device-connected = Gerät verbunden
device-connected-message = Sie können diese Seite schließen und zu Ihrem Gerät zurückkehren.
device-denied = Anfrage abgelehnt
device-denied-message = Das Gerät hat keinen Zugriff bekommen. Sie können diese Seite schließen.

## Fehler
error-code = Fehlercode:
error-go-back = Gehen Sie zurück zur Anwendung, von der Sie kamen, und versuchen Sie es erneut.
request-expired = Diese Anmeldeanfrage ist abgelaufen
request-expired-message = Die Anfrage wurde nicht gefunden oder ist abgelaufen, oder Cookies sind für diese Website gesperrt.
form-expired = Das Formular ist abgelaufen
form-expired-message = Laden Sie die Seite neu und versuchen Sie es erneut.

## Abmelden
logout-title = Abmelden
logout-heading = Abmelden?
logout-lead = Sie werden bei { $product } abgemeldet, und Anwendungen, die das unterstützen, werden benachrichtigt.

## Startseite
home-lead = Ein OAuth-2.0-Autorisierungsserver.
home-issuer = Aussteller:
home-metadata = Metadaten des Autorisierungsservers
home-jwks = Öffentliche Signaturschlüssel (JWKS)
home-account = Ihr Konto

## Form-Post-Antwortmodus
form-post-title = Zurück zur Anwendung
form-post-continue = Weiter zur Anwendung.

## Anmeldung in zwei Schritten
two-step-title = Anmeldung in zwei Schritten
two-step-use-passkey = Passkey verwenden
two-step-enter-code = Geben Sie den Code aus Ihrer Authenticator-App ein.
two-step-code = Code
two-step-verify = Bestätigen
two-step-lost-device = Gerät verloren? Geben Sie stattdessen einen Ihrer Wiederherstellungscodes ein.
two-step-passkey-lead = Verwenden Sie Ihren Passkey, um die Anmeldung abzuschließen.
two-step-setup-required = Diese Anmeldung braucht einen zweiten Schritt. Richten Sie jetzt eine Authenticator-App ein.
two-step-turn-on = Anmeldung in zwei Schritten einschalten
two-step-expired = Diese Anmeldung ist abgelaufen
two-step-expired-message = Beginnen Sie erneut bei der App, bei der Sie sich anmelden wollten, oder auf Ihrer Kontoseite.
two-step-enter-app-code = Geben Sie den Code aus Ihrer Authenticator-App ein.
two-step-wrong = Dieser Code ist falsch oder wurde schon verwendet.
two-step-wrong-wait = Dieser Code ist falsch oder wurde schon verwendet. Versuchen Sie es in { $wait } erneut.
two-step-throttled = Zu viele falsche Codes. Versuchen Sie es in { $wait } erneut.
totp-step-open-app = Öffnen Sie Ihre Authenticator-App (zum Beispiel Google Authenticator, Microsoft Authenticator, 1Password oder Aegis) und fügen Sie ein Konto hinzu.
totp-step-scan = Scannen Sie diesen Code:
totp-step-or-key = oder geben Sie diesen Schlüssel ein:
totp-setup-link = Einrichtungslink
totp-step-enter-code = Geben Sie den 6-stelligen Code ein, den die App zeigt.
totp-name = Name
totp-name-hint = (um Ihre Geräte zu unterscheiden)
totp-default-name = Authenticator-App
totp-add-title = Authenticator-App hinzufügen
totp-add = Hinzufügen
recovery-title = Ihre Wiederherstellungscodes
recovery-lead = Wenn Sie Ihr Gerät verlieren, meldet Sie jeder dieser Codes einmal an, statt eines Codes aus Ihrer App. Sie werden nur jetzt angezeigt: Schreiben Sie sie auf oder speichern Sie sie an einem sicheren Ort.
recovery-continue = Ich habe sie gespeichert — weiter

## Sign-in, accounts, mail
register-new-here = Neu hier?
register-title = Konto erstellen
forgot-title = Passwort vergessen?
console-title = { $product }-Administration
console-signin-lead = Melden Sie sich mit einem Administrationskonto an.
account-title = Ihr Konto
account-signin-lead = Melden Sie sich an, um Ihr Konto zu sehen und zu verwalten.
forgot-lead = Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein. Wenn es ein Konto gibt, senden wir einen Link an seine E-Mail-Adresse, mit dem Sie ein neues Passwort wählen.
forgot-who = Benutzername oder E-Mail-Adresse
forgot-send = Link senden
back-to-sign-in = Zurück zur Anmeldung
password-new = Neues Passwort
password-again = Neues Passwort wiederholen
password-at-least = (mindestens { $n } Zeichen)
register-lead = Wir senden einen Link an Ihre E-Mail-Adresse: Das Konto ist bereit, sobald Sie ihn öffnen.
email-address = E-Mail-Adresse
register-password-again = Passwort wiederholen
register-button = Mein Konto erstellen
register-name = Ihr Name
optional = (optional)
register-have-account = Schon ein Konto?

## The account page
account-email = E-Mail
account-none = keine
account-verified = bestätigt
account-unverified = nicht bestätigt
account-confirm-email = Bestätigen Sie, dass die Adresse Ihnen gehört: Wir senden Ihnen einen Link.
account-send-verification = Bestätigungslink senden
account-apps = Apps mit Zugriff auf Ihr Konto
account-no-apps = Keine App hat Zugriff auf Ihr Konto.
account-app = App
account-it-can = Darf
account-since = Seit
account-remove-access = Zugriff entfernen
account-sessions = Wo Sie angemeldet sind
account-device = Gerät
account-address = Adresse
account-signed-in = Angemeldet
account-last-used = Zuletzt verwendet
account-how = Wie
account-this-browser = dieser Browser
account-mfa-required = Ihre Administration verlangt einen zweiten Schritt bei der Anmeldung: Richten Sie ihn jetzt ein.
account-mfa-none = Nur Ihr Passwort schützt Ihr Konto. Fügen Sie eine Authenticator-App hinzu: Die Anmeldung fragt dann auch nach einem Code daraus.
account-kind = Art
account-added = Hinzugefügt
account-remove = Entfernen
account-recovery-left = { $n ->
    [one] 1 Wiederherstellungscode übrig.
   *[other] { $n } Wiederherstellungscodes übrig.
}
account-new-recovery = Neue Wiederherstellungscodes erstellen
account-passkeys = Passkeys
account-passkeys-unavailable = Passkeys sind auf diesem Server nicht verfügbar:
account-passkeys-lead = Ein Passkey meldet Sie mit der Bildschirmsperre Ihres Geräts oder einem Sicherheitsschlüssel an, ohne Passwort, und zählt als zwei Schritte.
account-passkey-name = Name des Passkeys
account-passkey-default = Passkey
account-add-passkey = Passkey hinzufügen
account-passkey-js = Zum Hinzufügen eines Passkeys braucht es JavaScript.
account-change-email = E-Mail-Adresse ändern
account-new-email = Neue E-Mail-Adresse
account-current-password = Aktuelles Passwort
account-change-email-button = E-Mail-Adresse ändern
account-email-unverified-until = Die neue Adresse ist unbestätigt, bis Sie den Link öffnen, den wir an sie senden.
account-change-password = Passwort ändern
account-change-password-button = Passwort ändern
account-password-effect = Eine Änderung meldet Sie überall sonst ab, und jede App fragt Sie erneut.
account-events = Sicherheitsereignisse
account-no-events = Noch keine.

## Security events on the account page
event-sign-in = Angemeldet
event-sign-in-failed = Eine Anmeldung ist fehlgeschlagen (falsches Passwort)
event-sign-in-refused = Eine Anmeldung wurde abgewiesen: Das Konto ist gesperrt
event-consent-granted = Einer App Zugriff gegeben
event-consent-removed = Den Zugriff einer App entfernt
event-admin-password-set = Passwort geändert
event-admin-user-disabled = Konto von der Administration gesperrt
event-admin-user-enabled = Konto von der Administration entsperrt
event-refresh-reuse = Ein wiederverwendetes Token wurde erkannt, und der Zugriff der App wurde beendet
event-admin-sessions-ended = Überall abgemeldet
event-second-factor = Mit einem zweiten Faktor angemeldet
event-second-factor-failed = Ein falscher Code für den zweiten Faktor wurde eingegeben
event-second-factor-throttled = Zu viele falsche Codes für den zweiten Faktor
event-recovery-codes-created = Neue Wiederherstellungscodes erstellt
event-admin-mfa-reset = Zweite Faktoren von der Administration entfernt
event-password-reset-requested = Ein Link zum Zurücksetzen des Passworts wurde angefordert
event-password-reset = Passwort mit einem Link zurückgesetzt
event-invitation-accepted = Passwort aus der Einladung gewählt
event-email-verification-sent = Einen Bestätigungslink angefordert
event-user-registered = Konto erstellt
event-admin-user-invited = Von der Administration eingeladen
event-mail-failed = Eine E-Mail an Sie konnte nicht gesendet werden
event-from = { $what } von { $address }
event-mfa-added = Einen zweiten Faktor hinzugefügt ({ $name })
event-mfa-removed = Einen zweiten Faktor entfernt ({ $name })
event-email-verified = E-Mail-Adresse { $email } bestätigt
event-email-changed = E-Mail-Adresse geändert in { $email }

## Scopes aus OpenID Connect (was die Zustimmungsseite sagt)
scope-openid = Sie anmelden und wissen, wer Sie sind
scope-profile = Ihren Namen und Ihr Basisprofil sehen
scope-email = Ihre E-Mail-Adresse sehen
scope-address = Ihre Postanschrift sehen
scope-phone = Ihre Telefonnummer sehen
scope-offline_access = Verbunden bleiben, während Sie weg sind (Offline-Zugriff)
scope-groups = Die Gruppen sehen, zu denen Sie gehören

## Mailed links
link-reset-invalid = Der Link ist abgelaufen oder wurde schon verwendet. Fordern Sie einen neuen an.
link-ask-new = Neuen Link anfordern
link-invite-invalid = Die Einladung ist abgelaufen oder wurde schon verwendet. Bitten Sie Ihre Administration um eine neue.
link-verify-invalid = Der Link ist abgelaufen oder wurde schon verwendet. Fordern Sie auf Ihrer Kontoseite einen neuen an.
link-register-invalid = Der Link ist abgelaufen oder wurde schon verwendet. Registrieren Sie sich erneut.
link-register-again = Erneut registrieren
link-does-not-work = Dieser Link funktioniert nicht
mail-check = Sehen Sie in Ihr Postfach
forgot-sent = Wenn es für diesen Namen ein Konto mit E-Mail-Adresse gibt, haben wir einen Link dorthin gesendet. Öffnen Sie ihn innerhalb von 30 Minuten, um ein neues Passwort zu wählen.
invite-welcome = Willkommen
invite-lead = Wählen Sie das Passwort Ihres Kontos
invite-button = Mein Passwort festlegen
reset-title = Neues Passwort wählen
reset-lead = Das neue Passwort Ihres Kontos
reset-button = Mein Passwort ändern
passwords-differ = Die Passwörter stimmen nicht überein.
account-ready = Ihr Konto ist bereit
password-changed = Passwort geändert
email-confirmed = E-Mail-Adresse bestätigt
link-old-address = Dieser Link gilt einer alten Adresse
link-old-address-message = Die E-Mail-Adresse des Kontos hat sich geändert, seit der Link gesendet wurde. Fordern Sie auf Ihrer Kontoseite einen neuen an.
current-password-wrong = Das aktuelle Passwort ist nicht richtig.
account-not-found = Ihr Konto wurde nicht gefunden.
register-not-made = Das Konto wurde nicht angelegt
too-many-requests = Zu viele Anfragen. Versuchen Sie es in { $wait } erneut.
invite-done = Ihr Passwort ist festgelegt. Melden Sie sich damit als { $user } an.
reset-done = Das Passwort von { $user } ist geändert, und jede Sitzung des Kontos wurde beendet. Melden Sie sich mit dem neuen Passwort an.
verify-sent = Wir haben einen Link an { $email } gesendet: Öffnen Sie ihn innerhalb von 24 Stunden, um die Adresse zu bestätigen.
register-sent = Wir haben einen Link an { $email } gesendet. Öffnen Sie ihn innerhalb von 24 Stunden, um Ihr Konto fertig anzulegen; bis dahin kann es nicht verwendet werden.
register-done = Ihre Adresse ist bestätigt. Melden Sie sich als { $user } mit dem Passwort an, das Sie gewählt haben.
