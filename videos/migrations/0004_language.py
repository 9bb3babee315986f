from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0003_face_voice_channels"),
    ]

    operations = [
        migrations.AddField(
            model_name="analysisjob",
            name="language",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="analysisjob",
            name="language_probability",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="utterance",
            name="language",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="utterance",
            name="language_probability",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="utterance",
            name="original_text",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="utterance",
            name="translated",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="utterance",
            name="emotion",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AlterField(
            model_name="utterance",
            name="emotion_scores",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="utterance",
            name="sentiment",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AlterField(
            model_name="utterance",
            name="sentiment_scores",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
