from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by the `ping` task: a worker consumed a message and reached the database."""

    token = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.hostname} {self.token}"
