from django import forms


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Video file",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*"}),
        help_text="MP4, MOV, MKV, WebM... with people speaking English.",
    )
