"""change_features on real git repositories built in tmp_path: Python, Java and Go edits, a rename,
a binary file, a deletion inside a function, awkward file names, caps, shallow and unrelated history.

Expected complexities are McCabe numbers worked out by hand (1 + one per if/elif/for/case/and).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cimedic.tools.changes import ChangeFeatures, ChangeLimits, GitError, change_features

ALICE = ("Alice Doe", "alice@example.com")
BOB = ("Bob Roe", "bob@example.com")

CART_V1 = """\
def total(items):
    return sum(i.price for i in items)


def discount(price, code):
    if code == "HALF":
        return price / 2
    elif code == "TENOFF":
        return price - 10
    return price
"""
# discount gains a branch (CCN 3 -> 4); refund is new (CCN 2); total is untouched.
CART_V2 = """\
def total(items):
    return sum(i.price for i in items)


def discount(price, code):
    if code == "HALF":
        return price / 2
    elif code == "TENOFF":
        return price - 10
    elif code == "FREE":
        return 0
    return price


def refund(order):
    if order.paid:
        return order.amount
    return 0
"""
JAVA_V1 = """\
package shop;

public class Inventory {
    private int quantity;

    public int getQuantity() {
        int q = quantity;
        // no caching yet
        return q;
    }

    public void restock(int n) {
        if (n <= 0) {
            throw new IllegalArgumentException("n");
        }
        quantity += n;
    }
}
"""
# getQuantity loses a line (a pure deletion inside it, CCN 1); restock gains one (CCN 2).
JAVA_V2 = """\
package shop;

public class Inventory {
    private int quantity;

    public int getQuantity() {
        int q = quantity;
        return q;
    }

    public void restock(int n) {
        if (n <= 0) {
            throw new IllegalArgumentException("n");
        }
        quantity += n;
        System.out.println("restocked " + n);
    }
}
"""
GO_V1 = """\
package svc

func Handle(code int) string {
\tswitch code {
\tcase 200:
\t\treturn "ok"
\tcase 404:
\t\treturn "missing"
\tdefault:
\t\treturn "error"
\t}
}

func Helper() int {
\treturn 1
}
"""
GO_V2 = GO_V1.replace("\tdefault:", '\tcase 500:\n\t\treturn "server"\n\tdefault:')  # +2 lines, CCN 3 -> 4
OLD_NAME = (
    "def legacy(x):\n    for i in range(x):\n        if i and x:\n            print(i)\n    return x\n"
    + "# filler\n" * 30
)


def git(repo: Path, *args: str, author: tuple[str, str] = ALICE) -> str:
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(repo),
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write(repo: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def commit(repo: Path, message: str, author: tuple[str, str] = ALICE) -> str:
    git(repo, "add", "-A", author=author)
    git(repo, "commit", "-q", "-m", message, author=author)
    return git(repo, "rev-parse", "HEAD")


PNG_V1 = bytes(range(256)) * 4
PNG_V2 = bytes(reversed(range(256))) * 4


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "app/cart.py": CART_V1,
            "src/Inventory.java": JAVA_V1,
            "svc/handler.go": GO_V1,
            "docs/README.md": "# Shop\n\nSells things.\n",
            "assets/logo.png": PNG_V1,
            "old/name.py": OLD_NAME,
        },
    )
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, {"app/cart.py": CART_V2, "docs/README.md": "# Shop\n\nSells things.\nAnd refunds them.\n"})
    commit(repo, "discounts and refunds")
    write(repo, {"src/Inventory.java": JAVA_V2, "assets/logo.png": PNG_V2})
    (repo / "new").mkdir()
    git(repo, "mv", "old/name.py", "new/name.py")
    write(repo, {"new/name.py": OLD_NAME.replace("print(i)", "print(i, x)")})
    commit(repo, "inventory logging, rename", author=BOB)
    write(repo, {"svc/handler.go": GO_V2})
    commit(repo, "5xx")
    # main moves on after the branch point: none of this is part of the change.
    git(repo, "checkout", "-q", "main")
    write(repo, {"svc/other.go": "package svc\n\nfunc Other() {}\n", "docs/README.md": "# Shop v2\n\nSells things.\n"})
    commit(repo, "main moves on", author=BOB)
    return repo


def by_path(features: ChangeFeatures) -> dict[str, dict[str, object]]:
    return {f.path: f.model_dump() for f in features.files}


def test_pull_request_figures(repo: Path) -> None:
    asked: list[str] = []

    def failure_rate(author: str) -> float:
        asked.append(author)
        return 0.25

    f = change_features(repo, "main", "feature", failure_rate=failure_rate)

    assert f.commits == 3
    assert f.authors == ["alice@example.com", "bob@example.com"]
    assert f.author == "alice@example.com" and asked == ["alice@example.com"]
    assert f.author_failure_rate == 0.25
    assert f.merge_base == git(repo, "rev-parse", "main~1")
    assert f.files_changed == 6  # svc/other.go and main's README edit are not the change's
    assert f.binary_files == 1 and f.renamed_files == 1
    # cart +8/-0, README +1/-0, Inventory +1/-1, name.py +1/-1, handler.go +2/-0, logo binary
    assert (f.lines_added, f.lines_deleted) == (13, 2)
    assert f.languages == {"python": 2, "other": 2, "java": 1, "go": 1}

    files = by_path(f)
    assert (files["app/cart.py"]["functions_touched"], files["app/cart.py"]["complexity_sum"]) == (2, 4 + 2)
    assert (files["src/Inventory.java"]["functions_touched"], files["src/Inventory.java"]["complexity_sum"]) == (
        2,
        1 + 2,
    )
    assert (files["svc/handler.go"]["functions_touched"], files["svc/handler.go"]["complexity_sum"]) == (1, 4)
    renamed = files["new/name.py"]
    assert (renamed["status"], renamed["old_path"], renamed["complexity_sum"]) == ("R", "old/name.py", 4)
    assert files["assets/logo.png"]["binary"] and files["assets/logo.png"]["functions_touched"] is None
    assert files["docs/README.md"]["language"] is None

    assert f.functions_touched == 2 + 2 + 1 + 1
    assert f.changed_complexity == 6 + 3 + 4 + 4
    assert f.complexity_max == 4
    assert not f.truncated and f.notes == []


def test_commit_range_on_one_branch(repo: Path) -> None:
    # The last commit alone: only the Go change.
    f = change_features(repo, "feature~1", "feature")
    assert (f.commits, f.files_changed, f.lines_added, f.lines_deleted) == (1, 1, 2, 0)
    assert (f.changed_complexity, f.complexity_max, f.functions_touched) == (4.0, 4, 1)
    assert f.author == "alice@example.com" and f.author_failure_rate is None


def test_no_source_change_has_no_complexity(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "docs", "main")
    write(repo, {"docs/README.md": "# Shop\n"})
    commit(repo, "docs only")
    f = change_features(repo, "main", "docs")
    assert f.changed_complexity is None and f.complexity_max is None and f.functions_touched == 0
    # A top-level edit in a source file measures zero: no function was touched.
    write(repo, {"app/cart.py": "import math\n" + CART_V1})
    commit(repo, "import")
    g = change_features(repo, "main", "docs")
    assert (g.changed_complexity, g.complexity_max, g.functions_touched) == (0.0, None, 0)


def test_a_change_that_only_deletes_lines_inside_a_function(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "trim", "main")
    write(repo, {"src/Inventory.java": JAVA_V1.replace("        // no caching yet\n", "")})
    commit(repo, "drop a comment")
    f = change_features(repo, "main", "trim")
    assert (f.lines_added, f.lines_deleted) == (0, 1)
    assert (f.functions_touched, f.changed_complexity) == (1, 1.0)  # getQuantity, where the line was


def test_deleted_file_and_awkward_names(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "odd", "main")
    git(repo, "rm", "-q", "svc/handler.go")
    name = 'src/we ird "quoted"\tname ☃.py'
    write(repo, {name: "def f(a):\n    return a\n"})
    commit(repo, "odd")
    write(repo, {name: "def f(a):\n    if a:\n        return a\n    return -a\n"})
    commit(repo, "odd 2")
    f = change_features(repo, "main", "odd")
    files = by_path(f)
    assert files["svc/handler.go"]["status"] == "D" and files["svc/handler.go"]["lines_deleted"] == 16
    assert files[name]["status"] == "A" and files[name]["complexity_sum"] == 2
    assert f.changed_complexity == 2


def test_limits_cut_details_but_not_totals(repo: Path) -> None:
    limits = ChangeLimits(files_listed=3, files_analysed=2)
    f = change_features(repo, "main", "feature", limits=limits)
    full = change_features(repo, "main", "feature")
    assert (f.files_changed, f.lines_added, f.lines_deleted) == (
        full.files_changed,
        full.lines_added,
        full.lines_deleted,
    )
    assert f.truncated
    assert [x.path for x in f.files] == [x.path for x in full.files[:3]]
    # The two most-changed source files are measured: cart.py (8 lines), then of the three with 2
    # changed lines the first by path, new/name.py.
    measured = {"app/cart.py", "new/name.py"}
    assert f.changed_complexity == sum(x.complexity_sum or 0 for x in full.files if x.path in measured)
    assert any("complexity covers 2 of 4 changed source files" in n for n in f.notes)
    assert any("most-changed of 6 files" in n for n in f.notes)

    small = change_features(repo, "main", "feature", limits=ChangeLimits(file_bytes=300))
    assert small.truncated and any("over 300 bytes" in n for n in small.notes)


def test_unrelated_histories_are_compared_directly(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "rewrite")
    git(repo, "rm", "-rq", "--cached", ".")
    for p in list(repo.iterdir()):
        if p.name != ".git":
            subprocess.run(["rm", "-rf", str(p)], check=True)
    write(repo, {"app/cart.py": CART_V2})
    commit(repo, "fresh start")
    f = change_features(repo, "main", "rewrite")
    assert f.merge_base is None and f.commits == 1
    assert any("share no history" in n for n in f.notes)
    assert f.files_changed == 7  # everything main has differs from the one-file tree


def test_errors_are_one_clear_line(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="unknown revision nope"):
        change_features(repo, "main", "nope")
    with pytest.raises(GitError, match="cannot start with"):
        change_features(repo, "--output=/tmp/x", "main")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        change_features(plain, "main", "feature")


def test_shallow_clone_says_how_to_fetch(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{repo}", str(clone))
    with pytest.raises(GitError) as err:
        change_features(clone, git(repo, "rev-parse", "main~1"), "HEAD")
    assert "shallow" in str(err.value) and "\n" not in str(err.value)


def test_a_vendored_dependency_of_1500_files(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "vendor", "main")
    files: dict[str, str | bytes] = {
        f"vendor/lib{i // 100}/mod{i}.py": f"def f{i}(x):\n    if x > {i}:\n        return x\n    return {i}\n"
        for i in range(1500)
    }
    write(repo, files)
    commit(repo, "vendor a library")
    f = change_features(repo, "main", "vendor")
    assert (f.files_changed, f.lines_added, f.lines_deleted) == (1500, 6000, 0)
    assert f.truncated and len(f.files) == 1000
    # 300 files measured by default, each one touched function of complexity 2.
    assert (f.functions_touched, f.changed_complexity, f.complexity_max) == (300, 600.0, 2)
    assert any("complexity covers 300 of 1500" in n for n in f.notes)
