from django.urls import path

from videos import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("upload/", views.upload, name="upload"),
    path("analyses/<uuid:pk>/", views.job_detail, name="job-detail"),
    path("analyses/<uuid:pk>/delete/", views.job_delete, name="job-delete"),
]
