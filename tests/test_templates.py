from cimedic.tools.logs.templates import TemplateIndex, fingerprint, mask


def test_mask_hides_what_varies_between_runs() -> None:
    line = "Downloading https://files.example.org/pkg-1.2.3.tgz to /tmp/x/y.tgz in 3.5s (sha 0a1b2c3d4e5f6a7b)"
    assert mask(line) == "Downloading <URL> to <PATH> in <NUM> (sha <HEX>)"


def test_lines_differing_only_in_variables_share_a_template() -> None:
    index = TemplateIndex()
    a = index.add("src/a.c:3:5: error: 'x' undeclared")
    b = index.add("src/other/b.c:17:1: error: 'x' undeclared")
    c = index.add("npm ERR! code E404")
    assert a == b != c
    assert index.counts[a] == 2
    assert index.knows("lib/zz.c:9:9: error: 'x' undeclared")
    assert not index.knows("Connection reset by peer")


def test_fingerprint_is_stable_across_reruns() -> None:
    run1 = ["tests/test_a.py:12: AssertionError: got 41 after 0.51s"]
    run2 = ["tests/test_a.py:12: AssertionError: got 43 after 0.73s"]
    assert fingerprint(run1) == fingerprint(run2)
    assert fingerprint(run1) != fingerprint(["tests/test_a.py:12: KeyError: 'x'"])
