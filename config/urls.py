from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from config import health

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("accounts/", include("accounts.urls")),  # before allauth's: its confirm-email/<key>/
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", health.metrics, name="metrics"),
    path("api/v1/", include("videos.api_urls")),
    path("api/v1/", include("quotas.urls")),
    path("", include("videos.urls")),
]

# JSON in the API's error shape under /api/ (DEBUG is off in the product), HTML elsewhere.
handler404 = "videos.api.not_found"
handler500 = "videos.api.server_error"
