"""JSON API v1 (Django REST framework + drf-spectacular). Thin: services do the work."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.http import content_disposition_header
from django.views import defaults
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import DataAndFiles, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from accounts.api_keys import create_api_key, revoke_api_key
from accounts.models import ApiKey
from quotas import services as quotas
from videos import abandon, exports, services, subtitles
from videos.errors import Conflict, ServiceError, UploadRejected
from videos.models import AnalysisJob, JobStatus
from videos.serializers import (
    AnalysisCreateSerializer,
    AnalysisSerializer,
    ApiKeyCreateSerializer,
    DirectUploadRequestSerializer,
    RerunSerializer,
    SpeakerNamesSerializer,
    SpeakerSerializer,
    WebhookSecretSerializer,
)
from webhooks import services as webhooks

# Retry-After while a job is not finished: 1 s keeps the page's progress live (a status poll
# costs a few ms: docs/PERFORMANCE.md), and short jobs still show their stages.
POLL_AFTER_S = 1

_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "invalid_request",
    exceptions.ValidationError: "invalid_request",
    exceptions.Throttled: "rate_limited",
}


def error_body(code: str, message: str, details: object = None) -> dict:
    """The one JSON shape every API error has."""
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "The request is invalid.", response.data)
    else:
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: the API's JSON error shape under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: as not_found; the exception itself is logged by Django, never shown."""
    if request.path.startswith("/api/"):
        message = "The server failed to handle this request; the error has been logged."
        return JsonResponse(error_body("server_error", message), status=500)
    return defaults.server_error(request)


class _NameKeepingParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        # Django keeps what follows the last slash ("script>.mp4"); the name is only shown.
        return super().sanitize_file_name(services.display_name(file_name))


class UploadParser(MultiPartParser):
    """DRF's multipart parser, keeping the file's name whole (see services.display_name)."""

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        request = parser_context["request"]
        meta = {**request.META, "CONTENT_TYPE": media_type}
        encoding = parser_context.get("encoding") or "utf-8"
        try:
            parser = _NameKeepingParser(meta, stream, request.upload_handlers, encoding)
            return DataAndFiles(*parser.parse())
        except MultiPartParserError as exc:
            raise exceptions.ParseError(f"Multipart form parse error - {exc}") from exc


def _own_jobs(request: Request):
    return AnalysisJob.objects.filter(owner=request.user).select_related("video")


class AnalysisListCreate(generics.ListAPIView):
    serializer_class = AnalysisSerializer
    parser_classes = (UploadParser, FormParser, JSONParser)

    def get_queryset(self):
        jobs = _own_jobs(self.request)
        wanted = [s for s in self.request.query_params.get("status", "").split(",") if s]
        if wanted:
            if not set(wanted) <= set(JobStatus.values):
                raise ServiceError("invalid_status", f"status must be one of {JobStatus.values}")
            jobs = jobs.filter(status__in=wanted)
        return jobs

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                str,
                description="One status, or several separated by commas (e.g. queued,running): "
                + ", ".join(JobStatus.values),
            )
        ],
        summary="List your analyses",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": AnalysisCreateSerializer,
            "application/json": AnalysisCreateSerializer,
        },
        responses={202: AnalysisSerializer},
        summary="Submit a video for analysis (a file, or the id of a direct upload)",
        description=f"Charging: {quotas.CHARGE_POLICY} "
        "Optional `callback_url`: when the job ends, its summary is POSTed there, "
        "signed with your webhook secret (see GET /api/v1/webhook-secret). Refused with 400 "
        "`invalid_callback_url` (not http(s), malformed, unresolvable) or "
        "`callback_url_forbidden` (loopback, private, link-local or reserved address).",
    )
    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH")
        max_bytes, _ = services.upload_limits(request.user)
        services.check_declared_size(
            int(length) if length and length.isdigit() else None, max_bytes
        )
        form = AnalysisCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if (count := len(request.FILES.getlist("file"))) > 1:
            raise UploadRejected(
                "too_many_files", f"Send one file per request; this one has {count}."
            )
        upload = form.validated_data.get("file")
        # The upload page's token: leaving that page withdraws the upload (videos.abandon).
        token = abandon.valid_token(request.headers.get("X-Upload-Token"))
        job = services.submit_analysis(
            request.user,
            upload=upload,
            name=upload.name if upload else "",
            upload_id=form.validated_data.get("upload_id"),
            callback_url=form.validated_data.get("callback_url", ""),
            before_queueing=lambda: abandon.refuse_if_abandoned(request.user, token),
        )
        if abandon.job_created(request.user, token, job):
            raise UploadRejected("upload_abandoned", "The upload was abandoned: its page was left.")
        body = AnalysisSerializer(job, context={"request": request}).data
        location = body["url"]
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class AnalysisDetail(APIView):
    @extend_schema(responses=AnalysisSerializer, summary="Status, progress and results")
    def get(self, request: Request, pk) -> Response:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        context = {"request": request, "with_results": True, "detail": True}
        response = Response(AnalysisSerializer(job, context=context).data)
        if not job.is_finished:
            response["Retry-After"] = str(POLL_AFTER_S)
        return response

    @extend_schema(
        responses={204: None},
        summary="Cancel a queued or running job (refunded), or delete a finished one",
        description=f"Cancel policy: {services.CANCEL_POLICY} Run it again with POST "
        "/api/v1/analyses/{id}/rerun. Deleting a finished job removes it (and its video, "
        "unless a run again uses it); a succeeded job still counts.",
    )
    def delete(self, request: Request, pk) -> Response:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        services.cancel_or_delete(job)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnalysisRerun(APIView):
    @extend_schema(
        request=RerunSerializer,
        responses={202: AnalysisSerializer},
        summary="Run a canceled or failed analysis again, as a new analysis of the same video",
        description="Charged like a new submission (429 `quota_exceeded` over your allowance). "
        "409 `not_rerunnable` for a queued, running or succeeded analysis; 409 `already_rerun` "
        "(with `details.rerun_id`) when it was already run again.",
    )
    def post(self, request: Request, pk) -> Response:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        form = RerunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        new = services.rerun_job(job, callback_url=form.validated_data.get("callback_url"))
        body = AnalysisSerializer(new, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class AnalysisSpeakers(APIView):
    @extend_schema(
        request=SpeakerNamesSerializer,
        responses={200: SpeakerSerializer(many=True)},
        summary="Name the speakers of a finished analysis",
        description='Body {"names": {"1": "Ann", "2": "Ben"}}; an empty name restores '
        '"Speaker N". The names appear in the API, the page, CSV and subtitles. 400 '
        "`unknown_speaker` for an id the analysis does not have, `name_too_long` over 60 "
        "characters; 409 `no_results` before the analysis succeeded.",
    )
    def patch(self, request: Request, pk) -> Response:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        form = SpeakerNamesSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.rename_speakers(job, form.validated_data["names"])
        return Response(SpeakerSerializer(job.named_speakers(), many=True).data)


class FirstRendererNegotiation(DefaultContentNegotiation):
    """Files whatever the Accept header says (a <track> may ask for text/vtt only): errors are
    JSON, the file itself is a plain HttpResponse."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AnalysisSubtitles(APIView):
    fmt = "vtt"
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        responses={
            (200, "text/vtt"): OpenApiTypes.STR,
            (200, "application/x-subrip"): OpenApiTypes.STR,
        },
        summary="Subtitles: one cue per utterance with its emotion and sentiment",
        description="WebVTT (`subtitles.vtt`) or SRT (`subtitles.srt`). Each cue: the words, "
        "then a label line such as `[joy · positive]`, or `[no text label]` when the language "
        "model gave none. 409 `no_results` until the analysis has succeeded.",
    )
    def get(self, request: Request, pk) -> HttpResponse:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        if job.status != JobStatus.SUCCEEDED:
            raise Conflict("no_results", f"A {job.status} analysis has no subtitles.")
        body, content_type = subtitles.job_subtitles(job, self.fmt)
        response = HttpResponse(body, content_type=content_type)
        name = exports.download_name(job, self.fmt, "subtitles")
        response["Content-Disposition"] = content_disposition_header(True, name)
        return response


class WebhookSecretView(APIView):
    @extend_schema(
        responses=WebhookSecretSerializer,
        summary="Your webhook signing secret (made on first use)",
        description="Callbacks carry `X-Timestamp` and `X-Signature: sha256=<hex>`, the "
        "HMAC-SHA256 of `<timestamp>.<raw body>` with this secret. Compare in constant time "
        "and refuse old timestamps.",
    )
    def get(self, request: Request) -> Response:
        return Response(WebhookSecretSerializer(webhooks.get_secret(request.user)).data)


class WebhookSecretRotate(APIView):
    @extend_schema(
        request=None,
        responses={201: WebhookSecretSerializer},
        summary="Replace your webhook secret: callbacks from now on are signed with the new one",
    )
    def post(self, request: Request) -> Response:
        secret = webhooks.rotate_secret(request.user)
        return Response(WebhookSecretSerializer(secret).data, status=status.HTTP_201_CREATED)


class DirectUploadCreate(APIView):
    @extend_schema(
        request=DirectUploadRequestSerializer,
        responses={201: dict},
        summary="Get a presigned URL to upload a video straight to S3",
    )
    def post(self, request: Request) -> Response:
        form = DirectUploadRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload, target = services.create_direct_upload(
            request.user, form.validated_data["filename"]
        )
        return Response(
            {
                "upload_id": str(upload.pk),
                "url": target["url"],
                "fields": target["fields"],
                "expires_at": upload.expires_at,
                "max_bytes": services.upload_limits(request.user)[0],
            },
            status=status.HTTP_201_CREATED,
        )


def _key_json(key: ApiKey) -> dict:
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "created": key.created,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


class ApiKeyListCreate(APIView):
    @extend_schema(responses=dict, summary="Your API keys (without the secrets)")
    def get(self, request: Request) -> Response:
        return Response([_key_json(k) for k in request.user.api_keys.all()])

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: dict},
        summary="Create an API key; the key is shown once, in this response",
    )
    def post(self, request: Request) -> Response:
        form = ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        key, plain = create_api_key(request.user, form.validated_data["name"])
        return Response({**_key_json(key), "key": plain}, status=status.HTTP_201_CREATED)


class ApiKeyRevoke(APIView):
    @extend_schema(responses={204: None}, summary="Revoke an API key")
    def delete(self, request: Request, pk: int) -> Response:
        revoke_api_key(generics.get_object_or_404(request.user.api_keys.all(), pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
