"""Spec loading: valid files, and every kind of typo named with file, line and choices."""

from pathlib import Path

import pytest

from dlbox.errors import SpecError
from dlbox.spec import load_spec, split_mount


def write(tmp_path: Path, text: str, name: str = "dlbox.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def error_of(tmp_path: Path, text: str, name: str = "dlbox.toml") -> str:
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, text, name))
    return str(exc.value)


def test_defaults_without_keys(tmp_path):
    spec = load_spec(write(tmp_path, "[env]\n"))
    assert spec.env.python == "3.11" and spec.env.torch == "auto" and spec.run.shm == "host"
    assert spec.net.proxy == "auto" and spec.net.ca_certs == "auto" and spec.env.find_links == "auto"


def test_name_defaults_to_directory(tmp_path):
    d = tmp_path / "My Project"
    d.mkdir()
    assert load_spec(write(d, "")).name == "my-project"


def test_unknown_key_names_file_line_and_valid_keys(tmp_path):
    msg = error_of(tmp_path, '[env]\npython = "3.11"\npythn = "3.10"\n')
    assert msg.startswith(f"{tmp_path / 'dlbox.toml'}:3:")
    assert "unknown key 'pythn' in [env]" in msg and "did you mean 'python'" in msg
    assert "valid keys: python, torch, cuda, base, flavor, apt, pip, requirements, find_links" in msg


def test_unknown_table(tmp_path):
    msg = error_of(tmp_path, '[env]\n\n[rnu]\ngpus = "all"\n')
    assert ":3:" in msg and "unknown key 'rnu'" in msg and "did you mean 'run'" in msg


def test_wrong_type_names_expected_type(tmp_path):
    msg = error_of(tmp_path, "[run]\nshm = 'host'\ngpus = 1.5\n")
    assert ":3:" in msg and "'gpus' in [run]" in msg and "expected a string or an integer, got float 1.5" in msg


def test_list_given_as_string(tmp_path):
    msg = error_of(tmp_path, '[env]\napt = "git"\n')
    assert ":2:" in msg and "expected a list of strings" in msg


def test_literal_lists_choices(tmp_path):
    msg = error_of(tmp_path, '[env]\nflavor = "dev"\n')
    assert ":2:" in msg and "'runtime' or 'devel'" in msg


@pytest.mark.parametrize(
    "text, words",
    [
        ('[env]\npython = "311"\n', "Python minor version"),
        ('[env]\ntorch = "latest"\n', '"auto", "none" or a version'),
        ('[env]\ncuda = "12"\n', "CUDA version"),
        ('[run]\nports = ["http"]\n', "port"),
        ('[run]\nports = ["70000"]\n', "port"),
        ('[run]\ngpus = "some"\n', "device ids"),
        ('[run]\nshm = "lots"\n', "size"),
        ('[run]\nmounts = ["/data"]\n', "HOST:CONTAINER"),
        ('[net]\nproxy = "127.0.0.1:7890"\n', "URL"),
        ('[net]\napt_mirror = "mirrors.ustc.edu.cn"\n', "http(s) URL"),
        ('name = "My App"\n', "lower-case"),
    ],
)
def test_bad_values(tmp_path, text, words):
    assert words in error_of(tmp_path, text)


def test_missing_requirements_file(tmp_path):
    msg = error_of(tmp_path, '[env]\nrequirements = "reqs.txt"\n')
    assert ":2:" in msg and "no such file" in msg


def test_missing_find_links_dir(tmp_path):
    msg = error_of(tmp_path, '[env]\nfind_links = ["wheels"]\n')
    assert "not a directory" in msg


def test_invalid_toml(tmp_path):
    assert "not valid TOML" in error_of(tmp_path, "[env\n")


def test_no_spec_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SpecError) as exc:
        load_spec(tmp_path)
    assert exc.value.fix.startswith("dlbox init")


def test_pyproject_tool_table_with_line(tmp_path):
    text = '[project]\nname = "x"\n\n[tool.dlbox.env]\npython = "3.11"\ntorhc = "2.3.1"\n'
    msg = error_of(tmp_path, text, "pyproject.toml")
    assert "pyproject.toml:6:" in msg and "[tool.dlbox.env]" in msg


def test_pyproject_tool_table_loads(tmp_path):
    spec = load_spec(write(tmp_path, '[tool.dlbox.run]\nports = "7860"\n', "pyproject.toml"))
    assert spec.run.ports == ["7860"]


def test_windows_mounts_are_valid_syntax():
    assert split_mount("C:\\data:/data") == ("C:\\data", "/data", "rw")
    assert split_mount("C:/data:/data:ro") == ("C:/data", "/data", "ro")
    assert split_mount("~/datasets:/datasets:ro") == ("~/datasets", "/datasets", "ro")


@pytest.fixture
def spec_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dlbox" / "catalog"


def test_a_spec_checked_once_is_read_from_the_cache(tmp_path, spec_cache, monkeypatch):
    import dlbox.spec

    project = write(tmp_path, '[env]\napt = ["git"]\n')
    first = load_spec(project)
    monkeypatch.setattr(dlbox.spec, "_check", lambda *a: pytest.fail("checked again"))
    assert load_spec(project) == first and first.env.apt == ["git"]
    # other bytes are other specs: checked (here: refused by the patch), never the kept one
    (project / "dlbox.toml").write_text('[env]\napt = ["curl"]\n')
    with pytest.raises(pytest.fail.Exception):
        load_spec(project)


def test_a_spec_with_a_password_in_a_url_is_never_kept(tmp_path, spec_cache):
    spec = load_spec(write(tmp_path, '[net]\nproxy = "http://alice:s3cret@proxy.example:3128"\n'))
    assert spec.net.proxy.endswith("@proxy.example:3128")
    assert not list(spec_cache.glob("spec-*"))


def test_a_toml_date_is_named_as_one(tmp_path):
    msg = error_of(tmp_path, "[run]\ncommand = 1979-05-27\n")
    assert ":2:" in msg and "'command' in [run]" in msg and "got a TOML date/time 1979-05-27" in msg


def test_a_bad_spec_is_refused_again_from_a_warm_cache(tmp_path, spec_cache):
    good = load_spec(write(tmp_path, '[env]\npython = "3.12"\n'))
    assert good.env.python == "3.12"
    for _ in range(2):
        assert "expected a Python minor version" in error_of(tmp_path, '[env]\npython = "3.x"\n')


# -- any TOML a user can write is a Spec or one SpecError, never a traceback --------------------------

import datetime  # noqa: E402
import tomllib  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dlbox.spec import SECTIONS, SpecDoc  # noqa: E402

_KEYS = sorted({f for cls in (*SECTIONS.values(), SpecDoc) for f in cls.__dataclass_fields__} | {"pythn", "x"})
_SCALARS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), st.integers(-2, 70000), st.floats(allow_nan=False, width=32), st.booleans(),
    st.sampled_from(["3.11", "auto", "none", "2.3.1", "12.1", "all", "0,2", "8g", "host", "git", "80", "8080:80",
                     "http://p:3128", "~/d:/d:ro", "env", "file:/x", "3.x"]),
    st.dates(min_value=datetime.date(1970, 1, 1)),
)
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3), st.dictionaries(st.sampled_from(_KEYS + ["A_B"]), _SCALARS, max_size=2))
_TABLES = st.dictionaries(st.sampled_from(["env", "run", "net", "envv"]), st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4),
                          max_size=3)


def _toml(doc: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "0"
        if isinstance(v, datetime.date):
            return v.isoformat()
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {value(x)}" for k, x in v.items()) + "}"
    return "".join(f"[{t}]\n" + "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in keys.items()) for t, keys in doc.items())


import json  # noqa: E402


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_TABLES)
def test_any_toml_is_a_spec_or_one_spec_error(tmp_path, doc):
    text = _toml(doc)
    tomllib.loads(text)   # the generator writes valid TOML
    (tmp_path / "dlbox.toml").write_text(text)
    try:
        spec = load_spec(tmp_path)
    except SpecError as exc:
        msg = str(exc)
        assert "\n" not in msg.split(" (")[0] and str(tmp_path / "dlbox.toml") in msg, msg
    else:
        assert spec.to_dict()["env"].keys() == SECTIONS["env"].__dataclass_fields__.keys()


@pytest.mark.parametrize("text,expected", [
    ("[env]\npython = 3.11\n", "'python' in [env]: expected a string, got float 3.11"),
    ('[env]\ncompiler = "yes"\n', "expected true, false or 'auto', got str 'yes'"),
    ('[env]\nfind_links = "x"\n', "expected a list of strings, 'auto' or 'none', got str 'x'"),
    ("[run]\ncommand = 5\n", "expected a string or a list of strings, got int 5"),
    ("[run]\nenv = []\n", "expected a table of strings, got list []"),
])
def test_type_errors_name_the_type_in_words(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


@pytest.mark.parametrize("cuda", ["9.2", "10.2", "12.1", "13.0"])
def test_cuda_pins_of_every_catalogued_major_are_valid(tmp_path, cuda):
    """torch 1.7 has cu92 wheels (catalog torch.json 1.7.1, cuda_driver.json 9.2): a one-digit major is a CUDA too."""
    assert load_spec(write(tmp_path, f'[env]\ncuda = "{cuda}"\n')).env.cuda == cuda


def test_of_two_unknown_keys_the_first_in_the_file_is_named(tmp_path):
    msg = error_of(tmp_path, "[env]\nzzz = 1\naaa = 2\n")
    assert ":2:" in msg and "unknown key 'zzz'" in msg


@pytest.mark.parametrize("url", ["https://ghp_token@mirror.example/simple", "http://u:p@proxy.example:3128"])
def test_a_token_or_a_password_before_the_host_keeps_the_spec_out_of_the_cache(tmp_path, spec_cache, url):
    load_spec(write(tmp_path, f'[net]\npip_index = "{url}"\n'))
    assert not list(spec_cache.glob("spec-*"))
