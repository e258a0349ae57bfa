"""verify's import checks: each failure names the package and the likely fix (errors as seen on
real projects, issue 12)."""

from dlbox.doctor.imports import import_checks


def obs(dist, error=None, **more):
    mod = {"ok": error is None}
    if error:
        mod.update(error=error, trace=error)
    return {"imports": {dist: {"installed": True, "version": "1.0", "modules": {dist.replace("-", "_"): mod}}}, **more}


def one(o, gpu=False):
    [c] = import_checks(o, gpu=gpu)
    return c


def test_ok():
    c = one(obs("numpy"))
    assert c.status == "ok" and "import numpy" in c.detail


def test_mixed_family_names_relock():
    c = one({"family": {"torchvision": {"ok": False, "error": "RuntimeError: operator torchvision::nms does not exist",
                                          "trace": ""}}})
    assert c.status == "fail" and "dlbox lock --force" in c.fix and c.id == "torchvision compiled ops"


def test_cuda_library_next_to_cpu_torch():
    c = one(obs("torchaudio", "OSError: libcudart.so.13: cannot open shared object file: No such file or directory"))
    assert c.status == "fail" and "CPU torch" in c.fix


def test_system_library_names_the_debian_package():
    c = one(obs("opencv-python", "ImportError: libxcb.so.1: cannot open shared object file: No such file"))
    assert '"libxcb1"' in c.fix and "[env] apt" in c.fix


def test_missing_module():
    c = one(obs("gradio", "ModuleNotFoundError: No module named 'uvicorn'"))
    assert "uvicorn" in c.fix


def test_not_installed():
    [c] = import_checks({"imports": {"einops": {"installed": False, "modules": {}}}}, gpu=False)
    assert c.status == "fail" and "not installed" in c.detail


def test_compile_without_compiler():
    [c] = import_checks({"compile": {"ok": False, "error": "InvalidCxxCompiler: No working C++ compiler found in "
                                                            "torch._inductor.config.cpp.cxx: (None, 'g++')"}}, gpu=False)
    assert c.status == "fail" and '"g++"' in c.fix


def test_gpu_only_package_on_cpu_is_a_warning():
    [c] = import_checks(obs("flash-attn", "ImportError: flash_attn_2_cuda: undefined symbol"), gpu=False,
                        cuda_builders=frozenset({"flash-attn"}))
    assert c.status == "warn"
