"""Web pages: dashboard, upload, job page with results, downloads, video stream, API keys and
the API guide. Thin: services, exports and presentation do the work."""

from __future__ import annotations

import json
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from accounts.api_keys import create_api_key, revoke_api_key
from mlcore.labels import EMOTIONS, SENTIMENTS
from quotas import services as quotas
from videos import abandon, exports, presentation, services, subtitles
from videos.api import POLL_AFTER_S
from videos.errors import ServiceError
from videos.forms import ApiKeyForm, UploadForm
from videos.help import model_card_html
from videos.models import AnalysisJob, JobStatus
from videos.storage import direct_upload_origin
from videos.streaming import video_response
from webhooks import services as webhooks

# Extensions accepted in the browser when the OS reports no video MIME type (e.g. .mkv on some
# systems); the server's ffprobe check decides in the end.
VIDEO_EXTENSIONS = ("mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ogv", "3gp", "wmv")


def _own_job(request: HttpRequest, pk: UUID) -> AnalysisJob:
    """The user's job, or 404: another user's job does not exist for them."""
    return get_object_or_404(AnalysisJob.objects.select_related("video"), pk=pk, owner=request.user)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    jobs = AnalysisJob.objects.filter(owner=request.user).select_related("video")[:100]
    usage = quotas.usage_summary(request.user)
    context = {
        "jobs": jobs,
        "usage": usage,
        "charge_policy": quotas.CHARGE_POLICY,
        "meters": presentation.usage_meters(usage),
        "poll_after_s": POLL_AFTER_S,
    }
    return render(request, "videos/dashboard.html", context)


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    """The form works without JavaScript; with it, upload.js sends the file to the API with a
    progress bar (or straight to S3) and only comes here for the page."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        try:
            job = services.submit_analysis(request.user, upload=file, name=file.name)
        except ServiceError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("job-detail", pk=job.pk)
    return upload_page(request, form, status=400 if form.errors else 200)


def upload_page(request: HttpRequest, form: UploadForm, *, status: int = 200) -> HttpResponse:
    """The upload page with `form` (and its errors)."""
    max_bytes, limits = services.upload_limits(request.user)
    usage = quotas.usage_summary(request.user)
    context = {
        "form": form,
        "max_bytes": max_bytes,
        "max_duration_s": limits.max_duration_s,
        "video_extensions": ",".join(VIDEO_EXTENSIONS),
        "usage": usage,
        "charge_policy": quotas.CHARGE_POLICY,
        "used_up": usage.remaining.analyses <= 0 or usage.remaining.video_seconds <= 0,
        # Seconds of analysis per second of video, for the page's estimate.
        "analysis_rate": round(presentation.analysis_rate(), 3),
    }
    response = render(request, "videos/upload.html", context, status=status)
    if origin := direct_upload_origin():  # the page's script posts the file to S3 itself
        response._csp_update = {"connect-src": [origin]}
    return response


@login_required
@require_POST
def upload_abandon(request: HttpRequest) -> HttpResponse:
    """The upload page's beacon when it is left mid-upload (videos.abandon)."""
    token = abandon.valid_token(request.POST.get("token"))
    if token is None:
        return HttpResponse(status=400)
    abandon.abandon(request.user, token)
    return HttpResponse(status=204)


@login_required
def job_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    job = _own_job(request, pk)
    utterances = list(job.utterances.all()) if job.status == JobStatus.SUCCEEDED else []
    summary = job.summary or {}
    named = job.named_speakers() if job.status == JobStatus.SUCCEEDED else []
    several = {s["id"]: s["name"] for s in named}
    emotion_shares = presentation.speaking_time_shares(utterances, "emotion", EMOTIONS)
    sentiment_shares = presentation.speaking_time_shares(utterances, "sentiment", SENTIMENTS)
    context = {
        "job": job,
        "cancel_policy": services.CANCEL_POLICY,
        "charge_policy": quotas.CHARGE_POLICY,
        "queue": presentation.queue_status(job),
        "rerun": job.reruns.first() if job.status in services.RERUNNABLE else None,
        "outcome": presentation.job_outcome(job, utterances),
        "translated_count": sum(1 for u in utterances if u.translated),
        "rows": presentation.utterance_rows(utterances, several if len(several) > 1 else None),
        "speakers": presentation.speaker_cards(named),
        "moments": presentation.key_moments(utterances),
        "chart_data": presentation.chart_data(job, utterances),
        "stage_labels": presentation.STAGE_LABELS,
        "channel_rows": presentation.channel_rows(job.channels),
        "emotion_shares": emotion_shares,
        "sentiment_shares": sentiment_shares,
        # Headlines only where supported ("mixed" / "unclear" otherwise: presentation).
        "headline_emotion": presentation.headline_fact(utterances, "emotion"),
        "headline_sentiment": presentation.headline_fact(utterances, "sentiment"),
        # Only when another channel changed something: else it repeats the words' result.
        "top_combined": presentation.headline_fact(utterances, "combined.emotion")
        if any(set((u.combined or {}).get("channels") or ()) - {"text"} for u in utterances)
        else None,
        "unlabelled_share": next((s for s in emotion_shares if not s.label), None),
        "has_voice": any((u.voice or {}).get("relative_intensity") is not None for u in utterances),
        "has_voice_emotion": any((u.voice or {}).get("emotion") for u in utterances),
        # The engine's mean probabilities, shown under their own name (not as shares).
        "emotion_means": presentation.distribution_rows(
            summary.get("emotion_distribution") or {}, EMOTIONS
        ),
        "sentiment_means": presentation.distribution_rows(
            summary.get("sentiment_distribution") or {}, SENTIMENTS
        ),
    }
    return render(request, "videos/job_detail.html", context)


@login_required
@require_POST
def job_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    job = _own_job(request, pk)
    outcome = services.cancel_or_delete(job)
    if outcome == "canceled":
        messages.info(request, "Analysis canceled. It does not count against your allowance.")
        return redirect("job-detail", pk=pk)
    messages.info(request, "Analysis deleted.")
    return redirect("dashboard")


@login_required
@require_POST
def job_speakers(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The page's rename form: one field per speaker, `name-<id>`."""
    job = _own_job(request, pk)
    names = {
        key.removeprefix("name-"): value
        for key, value in request.POST.items()
        if key.startswith("name-")
    }
    try:
        services.rename_speakers(job, names)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Speaker names saved.")
    return redirect(f"{reverse('job-detail', args=[pk])}#speakers")


@login_required
@require_POST
def job_rerun(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Run again: a new analysis of the same video (services.rerun_job), or why not."""
    job = _own_job(request, pk)
    try:
        new = services.rerun_job(job)
    except ServiceError as exc:
        rerun_id = exc.details.get("rerun_id")
        if rerun_id and AnalysisJob.objects.filter(pk=rerun_id, owner=request.user).exists():
            return redirect("job-detail", pk=rerun_id)  # a second click: the run already made
        messages.error(request, exc.message)
        return redirect("job-detail", pk=pk)
    messages.info(request, "Running the analysis again.")
    return redirect("job-detail", pk=new.pk)


@login_required
@require_GET
def job_video(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The owner's video for the player: byte ranges from local storage, or a redirect to a
    short-lived presigned S3 URL."""
    job = _own_job(request, pk)
    return video_response(job.video, request.headers.get("Range"))


@login_required
@require_GET
def results_json(request: HttpRequest, pk: UUID) -> HttpResponse:
    job = _own_job(request, pk)
    body = json.dumps(exports.results_json(job, request), cls=DjangoJSONEncoder, indent=2)
    return _download(body, "application/json", exports.download_name(job, "json"))


@login_required
@require_GET
def results_csv(request: HttpRequest, pk: UUID) -> HttpResponse:
    job = _own_job(request, pk)
    body = exports.results_csv(job)
    return _download(body, "text/csv; charset=utf-8", exports.download_name(job, "csv"))


@login_required
@require_GET
def subtitles_file(request: HttpRequest, pk: UUID, fmt: str) -> HttpResponse:
    """WebVTT/SRT: inline for the player's <track>, an attachment with ?download=1."""
    job = _own_job(request, pk)
    body, content_type = subtitles.job_subtitles(job, fmt)
    name = exports.download_name(job, fmt, "subtitles")
    return _download(body, content_type, name, attachment="download" in request.GET)


def _download(body: str, content_type: str, filename: str, attachment: bool = True) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(attachment, filename)
    return response


NEW_KEY_SESSION = "new_api_key"


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """List and create keys, show the webhook secret. Post/Redirect/Get: the POST creates the
    key and redirects (a reload cannot create a second one); the plain key rides in the session
    until that next GET, which shows it once and removes it. That page is never cached."""
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, plain = create_api_key(request.user, form.cleaned_data["name"])
        request.session[NEW_KEY_SESSION] = plain
        return redirect("api-keys-page")
    context = {
        "form": form,
        "keys": request.user.api_keys.all(),
        "new_key": request.session.pop(NEW_KEY_SESSION, None) if request.method == "GET" else None,
        "webhook_secret": webhooks.get_secret(request.user),
    }
    response = render(request, "videos/api_keys.html", context, status=400 if form.errors else 200)
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def webhook_secret_rotate(request: HttpRequest) -> HttpResponse:
    webhooks.rotate_secret(request.user)
    messages.success(request, "Webhook secret replaced: callbacks are now signed with the new one.")
    return redirect(reverse("api-keys-page") + "#webhook-secret-title")


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(request.user.api_keys.all(), pk=pk)
    revoke_api_key(key)
    messages.success(request, f"Key “{key.name}” revoked: it no longer works.")
    return redirect("api-keys-page")


def help_page(request: HttpRequest) -> HttpResponse:
    """What each channel measures and how sure it can be, in plain words, and the model card."""
    context = {"model_card": model_card_html()}
    return render(request, "videos/help.html", context)


@login_required
def api_guide(request: HttpRequest) -> HttpResponse:
    """curl examples against this very server (base URL from the request)."""
    base_url = request.build_absolute_uri("/").rstrip("/")
    context = {
        "base_url": base_url,
        "docs_url": request.build_absolute_uri(reverse("api-docs")),
        "schema_url": request.build_absolute_uri(reverse("api-schema")),
    }
    return render(request, "videos/api_guide.html", context)
