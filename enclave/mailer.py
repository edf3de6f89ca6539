"""Sending a notification (enclave.notify.Message) through the site's SMTP relay ([mail] settings)."""

from __future__ import annotations

import email.message
import smtplib
import ssl
from pathlib import Path

from enclave.notify import Message, Transport

PASSWORD_FILE = "smtp_password"
TIMEOUT = 30


def smtp_transport(mail, secrets_dir: Path) -> Transport:
    """A transport for the [mail] section: one connection per message, TLS as configured, login when a
    user name is set (password from secrets/smtp_password)."""
    password = None
    if mail.username:
        password = (Path(secrets_dir) / PASSWORD_FILE).read_text().strip()

    def send(msg: Message) -> None:
        em = email.message.EmailMessage()
        em["From"], em["To"], em["Subject"] = mail.sender, msg.to, msg.subject
        em.set_content(msg.body)
        context = ssl.create_default_context()
        if mail.security == "tls":
            conn = smtplib.SMTP_SSL(mail.smtp_host, mail.smtp_port, timeout=TIMEOUT, context=context)
        else:
            conn = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=TIMEOUT)
        with conn:
            if mail.security == "starttls":
                conn.starttls(context=context)
            if mail.username:
                conn.login(mail.username, password)
            conn.send_message(em)

    return send
