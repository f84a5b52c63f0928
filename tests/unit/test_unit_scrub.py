"""Scrubbing of sources, paths and prose."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import scrub
from protocol.scrub import (
    public_value,
    register_secrets,
    register_source_url,
    scrub_credentials,
    scrub_text,
    strip_userinfo,
)


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


# -- real-world camera URLs (issue: the scrubber missed these) --------------------------------

@pytest.mark.parametrize(("url", "password"), [
    ("rtsp://admin:p@ss@cam.local/s", "p@ss"),
    ("rtsp://admin:it's-me@cam.local:554/s", "it's-me"),
    ('rtsp://admin:say"hi"@cam.local/s', 'say"hi"'),
    ("rtsp://admin:two words@cam.local/s", "two words"),
    ("rtsp://admin:sl/ash@cam.local/s", "sl/ash"),
    ("rtsp://admin:p%40ss%21@cam.local/s", "p@ss!"),
    ("rtsp://cam.local/live?user=admin&password=hunter22", "hunter22"),
    ("rtsp://cam.local/live?usr=admin&pwd=hunter22&channel=1", "hunter22"),
    ("rtsp://cam.local:554/user=admin_password=hunter22_channel=1_stream=0.sdp", "hunter22"),
])
def test_camera_passwords_never_show(url, password):
    register_source_url(url)
    shown = public_value(url)
    assert password not in shown and "admin:" not in shown
    assert shown.startswith("rtsp://cam.local")
    prose = f"av.error.HTTPError: [Errno 401] Unauthorized: '{url}'; retrying"
    assert password not in scrub_text(prose)
    assert password not in scrub_text(url)


def test_credential_values_masked_even_unregistered():
    assert scrub_text("GET /x?token=abcdef123&a=1") == "GET /x?token=***&a=1"
    assert public_value("rtsp://h/u=1_pwd=zz9_ch=1") == "rtsp://h/u=1_pwd=***_ch=1"


def test_public_value_is_rebuilt_from_parsed_parts():
    assert public_value("rtsp://u:p@[fe80::1]:554/s?a=1") == "rtsp://[fe80::1]:554/s?a=1"
    assert public_value("demo://testsrc2?size=640x360") == "demo://testsrc2?size=640x360"


_PASSWORD = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=6, max_size=24)


@settings(max_examples=300, deadline=None)
@given(password=_PASSWORD, user=st.sampled_from(["admin", "u", "viewer"]),
       shape=st.sampled_from(["userinfo", "userinfo-encoded", "query", "query-short", "xmeye"]))
def test_property_no_generated_password_survives(password, user, shape):
    scrub._secrets.clear()
    if shape == "xmeye":  # `_` separates XMEye's path fields: such a password cannot be written there
        password = password.replace("_", "-")
    encoded = quote(password, safe="")
    url = {
        "userinfo": f"rtsp://{user}:{password}@10.1.2.3:554/stream1",
        "userinfo-encoded": f"rtsp://{user}:{encoded}@cam.example:554/stream1",
        "query": f"rtsp://cam.example/live?user={user}&password={encoded}&channel=1",
        "query-short": f"rtsp://cam.example/live?usr={user}&pwd={encoded}",
        "xmeye": f"rtsp://cam.example:554/user={user}_password={encoded}_channel=1_stream=0.sdp",
    }[shape]
    register_source_url(url)
    for text in (public_value(url), scrub_text(url), scrub_text(f"cannot open '{url}': refused"),
                 scrub_credentials(f"{url} failed")):
        assert password not in text, (url, text)
        assert encoded not in text or len(encoded) < scrub.MIN_SECRET_LEN, (url, text)
