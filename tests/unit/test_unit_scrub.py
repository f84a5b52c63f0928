"""Scrubbing of sources, paths and prose."""

from __future__ import annotations

import pytest

from protocol import scrub
from protocol.scrub import public_value, register_secrets, scrub_text, strip_userinfo


@pytest.fixture(autouse=True)
def _fresh_secrets(monkeypatch):
    # register_secrets keeps a process-wide list; give every test its own.
    monkeypatch.setattr(scrub, "_secrets", [])


@pytest.mark.parametrize(("value", "expected"), [
    ("rtsp://admin:hunter2@cam.local:554/stream1", "rtsp://cam.local:554/stream1"),
    ("rtsp://admin@cam.local/stream1", "rtsp://cam.local/stream1"),
    ("RTSPS://u:p@10.0.0.5/x?a=1", "RTSPS://10.0.0.5/x?a=1"),
    ("http://user:pw@h/live.m3u8", "http://h/live.m3u8"),
    ("rtsp://cam.local/stream1", "rtsp://cam.local/stream1"),
])
def test_strip_userinfo_from_values(value, expected):
    assert strip_userinfo(value) == expected
    assert public_value(value) == expected


def test_strip_userinfo_in_prose_keeps_the_sentence():
    text = "cannot open 'rtsp://admin:hunter2@cam.local:554/s/1': Connection refused"
    assert scrub_text(text) == "cannot open 'rtsp://cam.local:554/s/1': Connection refused"


def test_strip_userinfo_handles_several_urls_in_one_text():
    text = "tried rtsp://a:one@h1/x and rtsp://b:two@h2/y"
    assert scrub_text(text) == "tried rtsp://h1/x and rtsp://h2/y"


def test_email_like_text_without_scheme_is_untouched():
    assert strip_userinfo("mail ops@example.com") == "mail ops@example.com"


def test_registered_secrets_are_masked_in_prose_and_values():
    register_secrets("tok-abc-123", "turn-secret-xyz")
    out = scrub_text("bad bearer tok-abc-123 and turn-secret-xyz")
    assert "tok-abc-123" not in out and "turn-secret-xyz" not in out
    assert out == "bad bearer *** and ***"
    assert "tok-abc-123" not in public_value("rtsp://h/x?token=tok-abc-123")


def test_longer_secret_masked_before_its_prefix():
    register_secrets("abc", "abcdef")
    assert scrub_text("x abcdef y") == "x *** y"


def test_empty_and_very_short_secrets_are_not_registered():
    register_secrets("", "ab")
    # Masking two-letter strings would shred every message.
    assert scrub_text("about cabs") == "about cabs"


def test_unregistered_text_is_not_masked():
    register_secrets("s3cret-value")
    assert scrub_text("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize(("value", "expected"), [
    ("/srv/media/x.mp4", "x.mp4"),
    ("relative/dir/clip.mp4", "clip.mp4"),
    ("clip.mp4", "clip.mp4"),
    ("C:\\media\\clip.mp4", "clip.mp4"),
    ("/var/lib/icey/recordings/", "recordings"),
    ("./recordings", "recordings"),
    ("", ""),
])
def test_public_value_reduces_local_paths_to_file_name(value, expected):
    assert public_value(value) == expected


@pytest.mark.parametrize("value", ["rtsp://cam.local/stream1/main", "demo://testsrc2?size=640x360&rate=25",
                                   "https://h/a/b/c.m3u8"])
def test_public_value_keeps_urls(value):
    assert public_value(value) == value


@pytest.mark.parametrize("text", [
    "HTTP/WS on 4500, TURN on 3478",
    "Vision/speech are configured but stream mode is not active",
    "Using remote media source rtsp://cam.local/stream1/main",
    "Online since 2024-01-01T00:00:00Z",
    "ratio 1/2/3 done",
    "vision=on, speech=off",
    "Source is reconnecting: timeout; next retry at 2024-01-01T00:00:05Z",
])
def test_prose_keeps_its_sentence(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("Local media source not found: /srv/media/x.mp4", "Local media source not found: x.mp4"),
    ("TLS certificate not found: /etc/icey/tls/cert.pem", "TLS certificate not found: cert.pem"),
    ("cannot open '/srv/media/x.mp4'", "cannot open 'x.mp4'"),
    ("see (/var/log/icey/a.log) for details", "see (a.log) for details"),
    ("/srv/media/x.mp4 is missing", "x.mp4 is missing"),
])
def test_absolute_paths_in_prose_reduced_to_file_name(text, expected):
    assert scrub_text(text) == expected


def test_scrub_text_combines_userinfo_secret_and_path_rules():
    register_secrets("tok-42-abc")
    text = "worker failed on rtsp://u:pw@h/x (token tok-42-abc) writing /var/lib/icey/rec/clip.mp4"
    assert scrub_text(text) == "worker failed on rtsp://h/x (token ***) writing clip.mp4"
