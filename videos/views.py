"""Web pages: dashboard, upload form, job page. Thin: services do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from quotas import services as quotas
from videos import services
from videos.errors import ServiceError
from videos.forms import UploadForm
from videos.models import AnalysisJob


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    jobs = AnalysisJob.objects.filter(owner=request.user).select_related("video")[:100]
    usage = quotas.usage_summary(request.user)
    return render(request, "videos/dashboard.html", {"jobs": jobs, "usage": usage})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        try:
            job = services.submit_analysis(request.user, upload=file, name=file.name)
        except ServiceError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("job-detail", pk=job.pk)
    return render(request, "videos/upload.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    job = get_object_or_404(AnalysisJob.objects.select_related("video"), pk=pk, owner=request.user)
    return render(
        request, "videos/job_detail.html", {"job": job, "utterances": job.utterances.all()}
    )


@login_required
@require_POST
def job_delete(request: HttpRequest, pk) -> HttpResponse:
    job = get_object_or_404(AnalysisJob, pk=pk, owner=request.user)
    outcome = services.cancel_or_delete(job)
    messages.info(request, f"Analysis {outcome}.")
    return redirect("job-detail", pk=pk) if outcome == "canceled" else redirect("dashboard")
