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
