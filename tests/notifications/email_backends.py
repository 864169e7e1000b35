"""Email backends for tests: an SMTP server that is down."""

import smtplib

from django.core.mail.backends.base import BaseEmailBackend


class RefusingEmailBackend(BaseEmailBackend):
    """Every send fails as if the SMTP server were unreachable; counts the tries on the class."""

    tries = 0

    def send_messages(self, email_messages) -> int:
        type(self).tries += 1
        raise smtplib.SMTPConnectError(421, "Service not available (test backend)")


REFUSING = "tests.notifications.email_backends.RefusingEmailBackend"
