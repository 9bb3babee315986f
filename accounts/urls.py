from django.urls import path

from accounts import views

urlpatterns = [
    path(
        "confirm-email/resend/",
        views.resend_verification,
        name="account_resend_verification",
    ),
]
