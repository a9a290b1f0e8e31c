import pytest

from ddpg.files import atomic_file, atomic_write


def test_write_failing_midway_leaves_the_old_file_intact_and_no_temporary_behind(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text('{"new": tr')
        raise RuntimeError("killed midway")
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_replaces_the_whole_file_with_text_or_bytes(tmp_path):
    target = tmp_path / "sub" / "summary.md"
    atomic_write(target, "first, longer text\n")
    atomic_write(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert [p.name for p in target.parent.iterdir()] == ["summary.md"]


def test_temporary_name_keeps_the_suffix_that_writers_choose_a_format_by(tmp_path):
    with atomic_file(tmp_path / "training.png") as tmp:
        tmp.write_bytes(b"png")
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".")
