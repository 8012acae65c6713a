"""The repository's address lives in _config.yml only: tools/repository_url.py writes it everywhere else."""

import json
import shutil
from pathlib import Path

import pytest
import repository_url

ROOT = Path(__file__).resolve().parents[2]


def test_every_place_holds_the_configured_address():
    assert repository_url.stale_files(ROOT) == [], "run: python tools/repository_url.py"


@pytest.fixture
def fork(tmp_path):
    """A copy of what the tool reads and writes."""
    (tmp_path / "book").mkdir()
    (tmp_path / "tlbook").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(ROOT / "tlbook" / "__init__.py", tmp_path / "tlbook" / "__init__.py")
    for path in list((ROOT / "book").glob("*.ipynb")) + [ROOT / "book" / "workshop.md"]:
        shutil.copy(path, tmp_path / "book" / path.name)
    return tmp_path


def test_a_fork_sets_the_address_once_and_the_tool_writes_it_everywhere(fork):
    config = fork / "_config.yml"
    config.write_text(
        config.read_text().replace(repository_url.configured_url(ROOT), "https://github.com/someone/my-tlbook")
    )
    assert len(repository_url.stale_files(fork)) == 11  # 10 notebooks (Chapter 7 has two) and the workshop guide
    changed = repository_url.write_url(fork)
    assert len(changed) == 11 and repository_url.stale_files(fork) == []
    cell = next(
        c
        for c in json.loads((fork / "book" / "ch07_does_it_pay_off.ipynb").read_text())["cells"]
        if "google.colab" in "".join(c["source"])
    )
    tag = repository_url.release_tag(ROOT)
    assert f'"tlbook @ git+https://github.com/someone/my-tlbook@{tag}"' in "".join(cell["source"])
    assert "git clone https://github.com/someone/my-tlbook tlbook" in (fork / "book" / "workshop.md").read_text()
    assert repository_url.write_url(fork) == []  # a second run changes nothing
    assert not list((fork / "book").glob(".*"))  # no temporary files left


def test_the_colab_cells_install_the_release_of_the_version_and_follow_a_new_one(fork):
    import tlbook

    assert repository_url.release_tag(ROOT) == f"v{tlbook.__version__}"
    for path in sorted((ROOT / "book").glob("*.ipynb")):  # the real chapters: the tag, not the branch tip
        assert f'@v{tlbook.__version__}\\"' in path.read_text(encoding="utf-8"), path.name
    init = fork / "tlbook" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{tlbook.__version__}"', '__version__ = "9.8.7"'))
    chapters = len(list((fork / "book").glob("*.ipynb")))
    assert len(repository_url.stale_files(fork)) == chapters  # every chapter, not the guide (it clones)
    repository_url.write_url(fork)
    assert all('@v9.8.7\\"' in p.read_text(encoding="utf-8") for p in (fork / "book").glob("*.ipynb"))
    init.write_text("# no version here\n")
    with pytest.raises(ValueError, match=r"tlbook/__init__.py: found no line __version__"):
        repository_url.write_url(fork)


@pytest.mark.parametrize("url", ["REPOSITORY_URL", "https://gitlab.com/a/b", "https://github.com/only-owner", None])
def test_a_bad_address_is_refused_with_the_file_and_value(fork, url):
    config = fork / "_config.yml"
    config.write_text(
        config.read_text().replace(f"url: {repository_url.configured_url(ROOT)}", f"url: {url if url else ''}")
    )
    with pytest.raises(ValueError, match=r"_config.yml: repository.url must look like https://github.com/OWNER/REPO"):
        repository_url.write_url(fork)
    assert repository_url.main(["--check"]) == 0  # the real repository is untouched


def test_check_exits_1_and_names_the_stale_file(fork, monkeypatch, capsys):
    monkeypatch.setattr(repository_url, "ROOT", fork)
    guide = fork / "book" / "workshop.md"
    guide.write_text(guide.read_text().replace(repository_url.configured_url(ROOT), "https://github.com/old/place"))
    assert repository_url.main(["--check"]) == 1
    assert "book/workshop.md: not https://github.com/" in capsys.readouterr().out
    assert repository_url.main([]) == 0 and repository_url.main(["--check"]) == 0
