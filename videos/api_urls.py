from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from videos import api

urlpatterns = [
    path("analyses", api.AnalysisListCreate.as_view(), name="api-analyses"),
    path("analyses/<uuid:pk>", api.AnalysisDetail.as_view(), name="api-analysis"),
    path("analyses/<uuid:pk>/rerun", api.AnalysisRerun.as_view(), name="api-analysis-rerun"),
    path(
        "analyses/<uuid:pk>/speakers", api.AnalysisSpeakers.as_view(), name="api-analysis-speakers"
    ),
    path(
        "analyses/<uuid:pk>/subtitles.vtt",
        api.AnalysisSubtitles.as_view(fmt="vtt"),
        name="api-analysis-subtitles-vtt",
    ),
    path(
        "analyses/<uuid:pk>/subtitles.srt",
        api.AnalysisSubtitles.as_view(fmt="srt"),
        name="api-analysis-subtitles-srt",
    ),
    path("uploads", api.DirectUploadCreate.as_view(), name="api-uploads"),
    path("keys", api.ApiKeyListCreate.as_view(), name="api-keys"),
    path("keys/<int:pk>", api.ApiKeyRevoke.as_view(), name="api-key"),
    path("webhook-secret", api.WebhookSecretView.as_view(), name="api-webhook-secret"),
    path(
        "webhook-secret/rotate",
        api.WebhookSecretRotate.as_view(),
        name="api-webhook-secret-rotate",
    ),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (no inline script under the CSP); its
    # page keeps one inline <style> block, allowed on this page only.
    path(
        "docs",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]
