from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with our site class (config.admin.SiteAdmin)."""

    default_site = "config.admin.SiteAdmin"
