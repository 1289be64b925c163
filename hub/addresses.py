"""The one spelling of an e-mail address the hub takes: a mail's recipient, the settings'
sender. Apart so that the settings and the mail outbox can both check it without importing
each other."""

from __future__ import annotations

#: No spaces, no line breaks (a header is one line), one @.
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,253}$"
