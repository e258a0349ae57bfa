"""gc's choice of images, from rows as `docker system df -v` gives them."""

from dlbox.engine.lifecycle import ImageRow, parse_size, plan_gc


def row(repo, tag, id_, created, containers=0):
    return ImageRow(repo, tag, id_, f"2026-11-26 0{created}:00:00 +0000 UTC", 100, 10, 90, containers)


def test_parse_size_reads_dockers_decimal_units():
    assert parse_size("798.2MB") == 798_200_000 and parse_size("1.333kB") == 1333 and parse_size("0B") == 0
    assert parse_size("1.1GB") == 1_100_000_000 and parse_size("") == 0 and parse_size("n/a") == 0


def test_keeps_current_and_n_previous_their_jupyter_and_anything_in_use():
    repo = "dlbox/digits-0123abcd"
    rows = [row(repo, "aaaaaaaaaaa1", "i1", 1), row(repo, "aaaaaaaaaaa2", "i2", 2, containers=1),
            row(repo, "aaaaaaaaaaa3", "i3", 3), row(repo, "aaaaaaaaaaa4", "i4", 4), row(repo, "aaaaaaaaaaa5", "i5", 5),
            row(repo, "aaaaaaaaaaa1-jupyter-abcd1234", "j1", 1), row(repo, "aaaaaaaaaaa5-jupyter-abcd1234", "j5", 5),
            row(repo, "aaaaaaaaaaa1-jupyter", "j1b", 1), row(repo, "aaaaaaaaaaa4-jupyter", "j4", 4),
            row(repo, "baked", "b", 6), row("dlbox/other-11112222", "aaaaaaaaaaa3", "i3", 3),
            row("dlbox/tools", "k1", "t1", 1), row("dlbox/tools", "k2", "t2", 2), row("debian", "bookworm-slim", "d", 0)]
    plan = plan_gc(rows, keep=1, in_use={"i1"})
    removed = {r.ref for r in plan.remove}
    assert removed == {f"{repo}:aaaaaaaaaaa1-jupyter-abcd1234", f"{repo}:aaaaaaaaaaa1-jupyter", "dlbox/tools:k1"}
    kept = {r.ref for r in plan.kept_in_use}
    assert kept == {f"{repo}:aaaaaaaaaaa1", f"{repo}:aaaaaaaaaaa2", f"{repo}:aaaaaaaaaaa3"}, \
        "a container's image (running or stopped) and one another project also tags stay"
    only = plan_gc(rows, keep=0, in_use=set(), projects=("other",))
    assert [r.ref for r in only.remove] == [] and all(r.repo == "dlbox/other-11112222" for r in only.kept_in_use + only.remove)
