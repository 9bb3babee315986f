from django import forms


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Video file",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*"}),
        help_text="MP4, MOV, MKV, WebM... with people speaking English.",
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="What the key is for, e.g. “nightly batch script”.",
    )
