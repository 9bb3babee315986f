from django.urls import path

from quotas import api

urlpatterns = [
    path("usage", api.UsageView.as_view(), name="api-usage"),
]
