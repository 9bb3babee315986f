from django.urls import path

from videos import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("upload/", views.upload, name="upload"),
    path("upload/abandon", views.upload_abandon, name="upload-abandon"),
    path("analyses/<uuid:pk>/", views.job_detail, name="job-detail"),
    path("analyses/<uuid:pk>/delete/", views.job_delete, name="job-delete"),
    path("analyses/<uuid:pk>/rerun/", views.job_rerun, name="job-rerun"),
    path("analyses/<uuid:pk>/video", views.job_video, name="job-video"),
    path("analyses/<uuid:pk>/speakers/", views.job_speakers, name="job-speakers"),
    path("analyses/<uuid:pk>/results.json", views.results_json, name="job-results-json"),
    path("analyses/<uuid:pk>/results.csv", views.results_csv, name="job-results-csv"),
    path(
        "analyses/<uuid:pk>/subtitles.vtt",
        views.subtitles_file,
        {"fmt": "vtt"},
        name="job-subtitles-vtt",
    ),
    path(
        "analyses/<uuid:pk>/subtitles.srt",
        views.subtitles_file,
        {"fmt": "srt"},
        name="job-subtitles-srt",
    ),
    path("api-keys/", views.api_keys, name="api-keys-page"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path(
        "api-keys/webhook-secret/rotate/",
        views.webhook_secret_rotate,
        name="webhook-secret-rotate",
    ),
    path("api-guide/", views.api_guide, name="api-guide"),
    path("help/", views.help_page, name="help"),
]
