"""Refuse an HTML upload whose declared size is over the limit before anything reads its body.

Django's CSRF check reads a form POST's body (`request.POST`) before the view runs, so the
upload view itself would come too late: a 2 GB form post would be spooled to disk first. Every
middleware's request phase runs before the CSRF check's view phase, so this one does it there.
The API checks `Content-Length` in its view (DRF views skip that CSRF read)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from videos import services
from videos.errors import UploadRejected
from videos.forms import UploadForm


class UploadSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path == reverse("upload")
            and request.user.is_authenticated
        ):
            length = request.META.get("CONTENT_LENGTH", "")
            max_bytes, _ = services.upload_limits(request.user)
            try:
                services.check_declared_size(int(length) if length.isdigit() else None, max_bytes)
            except UploadRejected as exc:
                from videos.views import upload_page

                form = UploadForm()  # unbound: the body is never read
                form.cleaned_data = {}  # what add_error expects of a form that was cleaned
                form.add_error("file", exc.message)
                return upload_page(request, form, status=413)
        return self.get_response(request)
