"""Sign up, verify email, log in, log out and password reset through allauth's real views."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User

PASSWORD = "a-Long-and-Unusual-pw-42"


def _confirmation_url(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", body)
    assert match, f"no confirmation link in mail:\n{body}"
    return match.group(1)


@pytest.mark.django_db
def test_signup_verify_login_logout(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    assert not user.emailaddress_set.get().verified

    # Mandatory verification: logging in before confirming does not open a session.
    client.post(reverse("account_login"), {"login": "ada@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session

    assert len(mail.outbox) >= 1
    confirm_url = _confirmation_url(mail.outbox[-1].body)
    assert client.get(confirm_url).status_code == 200
    assert client.post(confirm_url).status_code == 302
    assert user.emailaddress_set.get().verified

    response = client.post(
        reverse("account_login"), {"login": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "ada@example.com" in client.get(reverse("home")).content.decode()

    assert client.post(reverse("account_logout")).status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_wrong_password_is_refused(client):
    User.objects.create_user("bob@example.com", PASSWORD)
    response = client.post(
        reverse("account_login"), {"login": "bob@example.com", "password": "wrong-password"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_password_reset_sends_mail_with_working_link(client):
    User.objects.create_user("carol@example.com", PASSWORD)
    response = client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["carol@example.com"]
    match = re.search(
        r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body
    )
    assert match, mail.outbox[0].body
    # The key link leads to the set-new-password form (allauth redirects to a session URL).
    response = client.get(match.group(1), follow=True)
    assert response.status_code == 200
    assert b"password1" in response.content


def test_user_manager_requires_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", PASSWORD)


@pytest.mark.django_db
def test_create_superuser_sets_flags():
    admin = User.objects.create_superuser("root@example.com", PASSWORD)
    assert admin.is_staff and admin.is_superuser
    assert str(admin) == "root@example.com"
