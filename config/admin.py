"""The admin site: named after the product, with one "Accounts" section."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest


class SiteAdmin(admin.AdminSite):
    site_header = "Video Sentiment administration"
    site_title = "Video Sentiment admin"
    index_title = "Administration"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """Apps with the same name shown as one section: allauth's "account" app (email
        addresses) and ours (users, API keys) are both "Accounts"."""
        merged: dict[str, dict] = {}
        for app in super().get_app_list(request, app_label):
            if app["name"] in merged:
                merged[app["name"]]["models"].extend(app["models"])
                merged[app["name"]]["models"].sort(key=lambda model: model["name"])
            else:
                merged[app["name"]] = app
        return list(merged.values())
