"""Account pages allauth lacks: sending the confirmation link again."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

# One new link per address in this time: the form cannot be used to flood an inbox.
RESEND_COOLDOWN_S = 180


@require_POST
def resend_verification(request: HttpRequest) -> HttpResponse:
    """The "check your email" page's "send the link again". The answer is the same whether or
    not the address has an account waiting, so the form tells nobody who signed up."""
    email = (request.POST.get("email") or "").strip()[:320]
    address = (
        EmailAddress.objects.filter(email__iexact=email, verified=False)
        .select_related("user")
        .first()
        if email
        else None
    )
    if address is not None and cache.add(f"resend-verification:{address.pk}", 1, RESEND_COOLDOWN_S):
        address.send_confirmation(request)
    if email:
        messages.info(
            request,
            f"If {email} is waiting for confirmation, a new link is on its way "
            f"(at most one every {RESEND_COOLDOWN_S // 60} minutes).",
        )
    return redirect("account_email_verification_sent")
