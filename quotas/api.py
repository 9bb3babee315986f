"""GET /api/v1/usage. Thin: quotas.services does the counting."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from quotas import services
from quotas.serializers import UsageSerializer


class UsageView(APIView):
    @extend_schema(
        responses=UsageSerializer,
        summary="Your plan, limits, this month's usage, what remains and when it resets",
    )
    def get(self, request: Request) -> Response:
        return Response(UsageSerializer(services.usage_summary(request.user)).data)
