"""Config generations without processes: the plan from one generation to the next, the source
edits, the state file and the atomic write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from protocol.messages import EditSource
from supervisor import source_entries
from supervisor.config_generations import ConfigReader, ConfigRejected, plan
from supervisor.config_loader import STATE_FILE
from supervisor.flags import parse_flags

DEMO = "demo://testsrc2"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def reader(*argv: str) -> ConfigReader:
    return ConfigReader(parse_flags(list(argv)), {})


def with_sources(tmp_path: Path, sources: list[dict], **extra) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"sources": sources, **extra}))
    return path


def test_plan_touches_only_what_changed(tmp_path):
    path = with_sources(tmp_path, [{"id": "a", "source": DEMO}, {"id": "b", "source": DEMO},
                                   {"id": "c", "source": DEMO}])
    running = reader("-c", str(path)).load()
    path.write_text(json.dumps({"sources": [{"id": "c", "source": DEMO, "video": {"bitrate": 1_000_000}},
                                            {"id": "a", "source": DEMO, "maxViewers": 2},
                                            {"id": "d", "source": DEMO}],
                                "http": {"port": 4600}, "auth": {"token": "a-token-that-is-long-enough"}}))
    change = plan(running, reader("-c", str(path)).load(), next_index=3)
    assert (change.added, change.removed, change.restarted, change.updated) == (["d"], ["b"], ["c"], ["a"])
    assert change.requires_restart == ["http.port", "auth.token"]
    assert {s.id: s.index for s in change.settings.sources} == {"c": 2, "a": 0, "d": 3}
    assert change.settings.http.port == 4500 and change.settings.auth.token == ""  # kept until a restart
    assert change.next_index == 4


def test_a_bad_candidate_is_rejected_with_its_key_path(tmp_path):
    path = with_sources(tmp_path, [{"id": "a"}, {"id": "a"}])
    with pytest.raises(ConfigRejected, match=r"duplicate sources\[1\]\.id 'a'"):
        reader("-c", str(path)).load()
    with pytest.raises(ConfigRejected, match=r"at sources\[0\]\.video\.width"):
        reader("-c", str(path)).load(file_raw={"sources": [{"id": "a", "video": {"width": "wide"}}]})


def test_edits():
    entries = [{"id": "a", "source": DEMO, "video": {"width": 640, "height": 360}}]
    patched = source_entries.edited(entries, EditSource(op="patch", source_id="a",
                                                        entry={"video": {"width": None, "fps": 10}}))
    assert patched == [{"id": "a", "source": DEMO, "video": {"height": 360, "fps": 10}}]
    assert source_entries.edited(entries, EditSource(op="remove", source_id="a")) == []
    for edit, code in ((EditSource(op="add", entry={"id": "a"}), "conflict"),
                       (EditSource(op="add", entry={"source": DEMO}), "bad_request"),
                       (EditSource(op="patch", source_id="zz"), "not_found"),
                       (EditSource(op="replace", source_id="a", entry={"id": "b"}), "bad_request")):
        with pytest.raises(source_entries.EditRefused) as refused:
            source_entries.edited(entries, edit)
        assert refused.value.code == code


def test_a_config_file_keeps_its_other_keys_and_media_source_moves_into_the_list(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"media": {"source": DEMO, "mode": "stream"}, "custom": {"kept": True}}))
    settings = reader("-c", str(path)).load()
    entries = source_entries.current(settings)
    assert entries == [{"id": "source-1", "source": DEMO}]
    doc = source_entries.document(settings, source_entries.edited(entries, EditSource(op="remove",
                                                                                      source_id="source-1")))
    assert doc == {"media": {"mode": "stream"}, "custom": {"kept": True}, "sources": []}
    source_entries.write_atomically(path, doc)
    assert reader("-c", str(path)).load().sources == []  # removing the last source sticks


def test_flag_sources_are_replaced_by_the_state_file(tmp_path):
    args = ("--record-dir", str(tmp_path / "rec"), "--source", f"a={DEMO}")
    settings = reader(*args).load()
    assert settings.edits_kind == "state" and settings.edits_path == str(tmp_path / "rec" / STATE_FILE)
    add = EditSource(op="add", entry={"id": "b", "source": DEMO})
    entries = source_entries.edited(source_entries.current(settings), add)
    source_entries.write_atomically(Path(settings.edits_path), source_entries.document(settings, entries))
    assert [s.id for s in reader(*args).load().sources] == ["a", "b"]
    Path(settings.edits_path).write_text('{"sources": [{"id": "b", "mode": "nope"}]}')
    with pytest.raises(ConfigRejected, match=r"invalid state file .*sources\[0\]\.mode 'nope'"):
        reader(*args).load()


def test_the_atomic_write_keeps_the_mode_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    source_entries.write_atomically(path, {"sources": []})
    assert json.loads(path.read_text()) == {"sources": []} and path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    with pytest.raises(source_entries.EditRefused) as refused:
        source_entries.write_atomically(path / "under-a-file.json", {})  # its parent is a file
    assert refused.value.code == "unavailable"


def test_an_edit_starts_from_the_file_as_written(tmp_path):
    path = with_sources(tmp_path, [{"source": DEMO}, {"id": "source-1", "source": DEMO}])
    settings = reader("-c", str(path)).load()
    assert [s.id for s in settings.sources] == ["source-2", "source-1"]
    path.write_text(json.dumps({"sources": [{"source": DEMO}, {"id": "source-1", "source": DEMO},
                                            {"id": "x", "source": DEMO, "maxViewers": 3}]}))  # not reloaded yet
    assert source_entries.current(settings) == [{"id": "source-2", "source": DEMO}, {"id": "source-1", "source": DEMO},
                                                {"id": "x", "source": DEMO, "maxViewers": 3}]


def test_hot_fields_are_updated_in_place_and_the_rest_restarts(tmp_path):
    """HOT_SOURCE_PATHS decides: thresholds, record on/off and retention, maxViewers and labels
    go to the running worker; switching vision on, or a new URL, needs a new worker."""
    sources = [{"id": i, "source": DEMO} for i in "abcdef"]
    path = with_sources(tmp_path, sources)
    running = reader("-c", str(path)).load()
    changed = [
        {"id": "a", "source": DEMO, "intelligence": {"vision": {"motion": {"threshold": 0.5}},
                                                     "speech": {"startThreshold": 0.1}}},
        {"id": "b", "source": DEMO, "record": {"enabled": True, "retention": {"maxAgeHours": 1}}},
        {"id": "c", "source": DEMO, "labels": {"site": "lobby"}, "maxViewers": 3},
        {"id": "d", "source": DEMO, "intelligence": {"vision": {"enabled": True}}},
        {"id": "e", "source": "demo://smptebars", "labels": {"site": "door"}},
        {"id": "f", "source": DEMO},
    ]
    path.write_text(json.dumps({"sources": changed}))
    change = plan(running, reader("-c", str(path)).load(), next_index=6)
    assert change.updated == ["a", "b", "c"] and change.restarted == ["d", "e"]
    assert change.changed["a"] == ["intelligence.speech.startThreshold", "intelligence.vision.motion.threshold"]
    assert change.changed["b"] == ["record.enabled", "record.retention.maxAgeHours"]
    assert change.changed["c"] == ["labels.site", "maxViewers"]
    assert change.restarted_for == {"d": ["intelligence.vision.enabled"], "e": ["url"]} and "f" not in change.changed


def test_labels_are_bounded(tmp_path):
    path = with_sources(tmp_path, [{"id": "a", "source": DEMO, "labels": {"bad key!": "x"}}])
    with pytest.raises(ConfigRejected, match=r"sources\[0\]\.labels"):
        reader("-c", str(path)).load()
    many = {f"k{n}": "v" for n in range(33)}
    with pytest.raises(ConfigRejected, match=r"sources\[0\]\.labels"):
        reader("-c", str(path)).load(file_raw={"sources": [{"id": "a", "source": DEMO, "labels": many}]})
