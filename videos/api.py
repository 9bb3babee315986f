"""JSON API v1 (Django REST framework + drf-spectacular). Thin: services do the work."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.views import defaults
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import DataAndFiles, FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from accounts.api_keys import create_api_key, revoke_api_key
from accounts.models import ApiKey
from videos import abandon, services
from videos.errors import ServiceError, UploadRejected
from videos.models import AnalysisJob, JobStatus
from videos.serializers import (
    AnalysisCreateSerializer,
    AnalysisSerializer,
    ApiKeyCreateSerializer,
    DirectUploadRequestSerializer,
)

POLL_AFTER_S = 2  # Retry-After while a job is not finished

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
        context = {"request": request, "with_results": True}
        response = Response(AnalysisSerializer(job, context=context).data)
        if not job.is_finished:
            response["Retry-After"] = str(POLL_AFTER_S)
        return response

    @extend_schema(responses={204: None}, summary="Cancel a running job, or delete a finished one")
    def delete(self, request: Request, pk) -> Response:
        job = generics.get_object_or_404(_own_jobs(request), pk=pk)
        services.cancel_or_delete(job)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
