"""Dutch ships complete: every marked string has a translation and the catalogue is compiled."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "nl" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext is not installed")
def test_dutch_catalogue_has_no_untranslated_or_fuzzy_entries():
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr
    assert "fuzzy" not in result.stderr


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext is not installed")
def test_compiled_catalogue_matches_its_source(tmp_path):
    # The .mo is committed so that `make run` needs no gettext; it must be compiled from the
    # committed .po (run `make messages` after changing translations).
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(compiled), str(PO)], check=True)
    assert compiled.read_bytes() == MO.read_bytes()
    with translation.override("nl"):
        assert translation.gettext("Sign in") != "Sign in"


@pytest.mark.django_db
def test_sign_in_page_speaks_dutch_when_asked():
    response = Client().get("/login/", HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 200
    assert 'lang="nl"' in response.content.decode()
    with translation.override("nl"):
        assert translation.gettext("Sign in") in response.content.decode()
