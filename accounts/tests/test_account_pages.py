"""The account pages and mails in our words and look: one vocabulary ("Sign up", "Log in",
"Log out"), each error under its own field, mails that name the product, a way to get the
confirmation link again, and a logout page that asks and works."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User

PASSWORD = "a-Long-and-Unusual-pw-42"
pytestmark = pytest.mark.django_db


def test_signup_and_login_pages_use_the_sites_words(client):
    signup = client.get(reverse("account_signup")).content.decode()
    assert "<h1>Sign up</h1>" in signup and '<button type="submit">Sign up</button>' in signup
    assert "Sign Up" not in signup and "Sign In" not in signup
    login = client.get(reverse("account_login")).content.decode()
    assert "<h1>Log in</h1>" in login and '<button type="submit">Log in</button>' in login
    assert "Sign In" not in login and "Forgot your password?" in login
    assert 'class="auth-brand"' in login and "<title>Log in · Video Sentiment</title>" in login


def test_a_password_error_sits_under_the_password_field(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "ada@example.com", "password1": "short", "password2": "short"},
    )
    page = response.content.decode()
    blocks = re.findall(r'<div class="field[^"]*">.*?</div>\s*(?=<div class="field|<p)', page, re.S)
    email_block = next(b for b in blocks if 'id="id_email"' in b)
    password_block = next(b for b in blocks if 'id="id_password1"' in b)
    assert "too short" in password_block and "has-error" in password_block
    assert "too short" not in email_block and "has-error" not in email_block
    assert 'aria-describedby="id_password1_helptext id_password1_error"' in password_block
    assert 'id="id_password1_error"' in password_block


def test_a_wrong_password_is_one_alert_above_the_form(client):
    User.objects.create_user("bob@example.com", PASSWORD)
    page = client.post(
        reverse("account_login"), {"login": "bob@example.com", "password": "wrong-Password-1"}
    ).content.decode()
    assert '<div class="alert alert-error" role="alert">' in page
    assert page.index('role="alert"') < page.index('id="id_login"')


def test_mails_name_the_product_not_the_host(client):
    client.post(
        reverse("account_signup"),
        {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    (message,) = mail.outbox
    assert message.subject == "Video Sentiment: Confirm your email address"
    assert message.body.startswith("Hello from Video Sentiment!")
    assert "testserver" not in message.body.split("http")[0]  # the greeting names no host
    assert re.search(r"http://testserver/accounts/confirm-email/\S+/", message.body)

    User.objects.create_user("carol@example.com", PASSWORD)
    client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    reset = mail.outbox[-1]
    assert reset.subject == "Video Sentiment: Reset your password"
    assert reset.body.startswith("Hello from Video Sentiment!")


def test_check_your_email_page_sends_the_link_again_once_per_cooldown(client):
    client.post(
        reverse("account_signup"),
        {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    page = client.get(reverse("account_email_verification_sent")).content.decode()
    assert "<h1>Check your email</h1>" in page
    assert f'action="{reverse("account_resend_verification")}"' in page
    assert len(mail.outbox) == 1

    resend = reverse("account_resend_verification")
    response = client.post(resend, {"email": "ADA@example.com"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("account_email_verification_sent")
    assert "a new link is on its way" in response.content.decode()
    assert len(mail.outbox) == 2 and mail.outbox[-1].to == ["ada@example.com"]
    client.post(resend, {"email": "ada@example.com"})  # within the cooldown: no third mail
    assert len(mail.outbox) == 2

    # An unknown or already confirmed address: the same answer, and no mail.
    unknown = client.post(resend, {"email": "nobody@example.com"}, follow=True)
    assert "a new link is on its way" in unknown.content.decode()
    user = User.objects.create_user("done@example.com", PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.post(resend, {"email": "done@example.com"})
    assert len(mail.outbox) == 2
    assert client.get(resend).status_code == 405


def test_logout_by_get_asks_and_its_form_logs_out():
    user = User.objects.create_user("eve@example.com", PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get(reverse("account_logout")).content.decode()
    assert "<h1>Log out</h1>" in page and "eve@example.com" in page
    assert "_auth_user_id" in browser.session  # a GET never logs out
    form = page.split('id="logout-form"')[1].split("</form>")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = browser.post(reverse("account_logout"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert "_auth_user_id" not in browser.session
    after = browser.get(reverse("account_logout"), follow=True)
    assert after.status_code == 200


def test_logging_in_before_confirming_says_why(client):
    client.post(
        reverse("account_signup"),
        {"email": "eve@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "eve@example.com", "password": PASSWORD}, follow=True
    )
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("account_email_verification_sent")
    assert "not confirmed yet" in page and "you can log in only once it is" in page
