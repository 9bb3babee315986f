from django import forms


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Video file",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*"}),
        help_text="MP4, MOV, MKV, WebM... with people speaking English.",
    )

    def clean_file(self):
        count = len(self.files.getlist("file"))
        if count > 1:  # the form's field would silently take the last one
            raise forms.ValidationError(f"Send one file at a time; this request has {count}.")
        return self.cleaned_data["file"]


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="What the key is for, e.g. “nightly batch script”.",
    )
