"""Forms of the settings pages. They read the page's fields; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from inference.augment import LIMITS as AUGMENTATION_LIMITS
from kernel.markdown import MAX_MARKDOWN_CHARS
from workspace.services import (
    DESCRIPTION_MAX,
    NAME_MAX,
    REVIEW_SETTINGS,
    ROLES,
    TOKEN_DAYS_MAX,
)

SETTING_LABELS = {
    "consensus_required": "Verdicts needed (consensus)",
    "gold_rate": "Gold rate",
    "review_lease_seconds": "Review lease (seconds)",
    "skip_delay_seconds": "Skip delay (seconds)",
    "max_skips": "Skips before a case goes to the admins",
    "hidden_suggestion_rate": "Hidden-suggestion rate",
}


def labels_from_text(text: str) -> list[str]:
    """One label per line (blank lines ignored)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _setting_field(name: str) -> forms.Field:
    bound = REVIEW_SETTINGS[name]
    if bound.integer:
        return forms.IntegerField(
            label=SETTING_LABELS[name],
            min_value=int(bound.minimum),
            max_value=int(bound.maximum),
            help_text=bound.text,
        )
    return forms.FloatField(
        label=SETTING_LABELS[name],
        min_value=bound.minimum,
        max_value=bound.maximum,
        help_text=bound.text,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )


class ReviewSettingsForm(forms.Form):
    consensus_required = _setting_field("consensus_required")
    gold_rate = _setting_field("gold_rate")
    review_lease_seconds = _setting_field("review_lease_seconds")
    skip_delay_seconds = _setting_field("skip_delay_seconds")
    max_skips = _setting_field("max_skips")
    hidden_suggestion_rate = _setting_field("hidden_suggestion_rate")


def _augmentation_number(name: str, label: str, help_text: str) -> forms.Field:
    """Text, not a number field: the value goes to the one augmentation rule as given
    (a number when it reads as one), which says what is wrong with it, as the API does."""
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.NumberInput(
            attrs={"step": "any", "min": "0", "max": f"{AUGMENTATION_LIMITS[name]:g}"}
        ),
    )


class TrainingAugmentationForm(forms.Form):
    """A workflow's default training augmentation; each setting off when unticked or 0."""

    hflip = forms.BooleanField(
        label="Horizontal flips",
        required=False,
        help_text="Mirror left-right. Off when left and right mean different things.",
    )
    vflip = forms.BooleanField(
        label="Vertical flips",
        required=False,
        help_text="Mirror top-bottom. Off when up and down mean different things.",
    )
    rotation = _augmentation_number(
        "rotation",
        "Rotation (± degrees)",
        f"0 = off; at most {AUGMENTATION_LIMITS['rotation']:g}.",
    )
    brightness = _augmentation_number(
        "brightness",
        "Brightness jitter (±)",
        f"A share: 0.1 is ±10%; 0 = off; at most {AUGMENTATION_LIMITS['brightness']:g}.",
    )
    contrast = _augmentation_number(
        "contrast",
        "Contrast jitter (±)",
        f"A share; 0 = off; at most {AUGMENTATION_LIMITS['contrast']:g}.",
    )
    colour = _augmentation_number(
        "colour",
        "Colour jitter (±, each channel)",
        f"A share; 0 = off; at most {AUGMENTATION_LIMITS['colour']:g}.",
    )
    crop = _augmentation_number(
        "crop",
        "Random crop (share of each side)",
        f"Keeps 1 - crop to all of each side; 0 = off; at most {AUGMENTATION_LIMITS['crop']:g}.",
    )

    def augmentation(self) -> dict[str, Any]:
        """The settings as the API's ``training_augmentation`` object."""
        chosen: dict[str, Any] = {
            "hflip": self.cleaned_data["hflip"],
            "vflip": self.cleaned_data["vflip"],
        }
        for name in AUGMENTATION_LIMITS:
            raw = (self.cleaned_data.get(name) or "0").strip()
            try:
                chosen[name] = float(raw)
            except ValueError:
                chosen[name] = raw  # refused with its name by the service
        return chosen


class WorkflowCreateForm(forms.Form):
    slug = forms.CharField(
        label="Slug",
        max_length=64,
        help_text="In the workflow's URLs: lower-case letters, digits and hyphens.",
    )
    name = forms.CharField(label="Name", max_length=NAME_MAX)
    labels = forms.CharField(
        label="Labels",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One label per line, at least two. Labels can be added later, never "
        "renamed once used.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    instructions = forms.CharField(
        label="Instructions for reviewers (Markdown)",
        required=False,
        max_length=MAX_MARKDOWN_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    def service_arguments(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["labels"] = labels_from_text(data["labels"])
        return data


class GeneralForm(forms.Form):
    name = forms.CharField(label="Name", max_length=NAME_MAX)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    instructions = forms.CharField(
        label="Instructions for reviewers (Markdown)",
        required=False,
        max_length=MAX_MARKDOWN_CHARS,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Shown on the review screen. Markdown: headings, lists, emphasis, links, "
        "tables; HTML is not allowed.",
    )


class ArchiveForm(forms.Form):
    confirm_slug = forms.CharField(label="Type the workflow's slug to confirm", max_length=64)


class AddLabelsForm(forms.Form):
    new_labels = forms.CharField(
        label="New labels, one per line",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class LabelExampleForm(forms.Form):
    """An example image of one label (checked by ``workspace.services.label_example_add``)."""

    label = forms.ChoiceField(label="Label", choices=())
    image = forms.FileField(
        label="Image", help_text="PNG, JPEG, WebP, BMP or TIFF; shown to reviewers as a thumbnail."
    )
    caption = forms.CharField(label="Caption (optional)", max_length=200, required=False)

    def __init__(self, *args: Any, labels: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["label"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(label, label) for label in labels]


class InviteForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150)
    role = forms.ChoiceField(label="Role", choices=[(role, role.title()) for role in ROLES])
    email = forms.EmailField(
        label="Email (optional)",
        required=False,
        help_text="A new account's set-password link is also emailed here when email is set up.",
    )


class RoleForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=[(role, role.title()) for role in ROLES])


class RemoveForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="Which system uses it, e.g. line-3-camera."
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days, optional)",
        required=False,
        min_value=1,
        max_value=TOKEN_DAYS_MAX,
    )


class TokenRevokeForm(forms.Form):
    token_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
