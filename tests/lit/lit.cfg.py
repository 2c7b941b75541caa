# lit configuration for moe's text-IR tests.
import os
import shutil
import lit.formats

config.name = "moe"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".moe", ".test"]
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "tests", "lit")

config.environment["PATH"] = os.pathsep.join(
    [config.moe_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
# The JIT's object cache lives in the build tree (MOE_TEST_JIT_CACHE), never
# in the user's home.
config.environment["MOE_CACHE_DIR"] = config.moe_jit_cache
config.environment.pop("XDG_CACHE_HOME", None)
# The sanitized build's options (tests/CMakeLists.txt) reach the tools.
for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
if "ASAN_OPTIONS" in os.environ:
    config.available_features.add("sanitized")
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%examples", os.path.join(config.moe_src_root, "examples")))
config.substitutions.append(("%srcroot", config.moe_src_root))

# The host's CPU features a test's `--cpu=NAME` needs (the kernel paths of
# a lesser CPU run only where the host can execute them): `avx512bf16` for
# cooperlake's.
try:
    with open("/proc/cpuinfo") as f:
        cpu_flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
except OSError:
    cpu_flags = []
if "avx512_bf16" in cpu_flags and "avx512_vnni" in cpu_flags:
    config.available_features.add("avx512bf16")

# tests/lit/mpi: moe-run --mpi under mpirun. Feature `mpi` when moe-run was
# built with MPI and mpirun is on PATH. %mpirun runs as root too, over shared
# memory only, and with more ranks than cores; tests wrap it in `timeout`.
mpirun = shutil.which("mpirun", path=config.environment["PATH"])
if mpirun and getattr(config, "moe_have_mpi", "OFF").upper() in ("ON", "TRUE", "1"):
    config.available_features.add("mpi")
mpirun_cmd = (mpirun or "mpirun") + " --allow-run-as-root --mca btl self,vader --oversubscribe"
# In the sanitized build MPI ranks keep ASan and UBSan but not LSan: Open MPI
# allocates process-lifetime state from plugins it has unloaded by exit,
# which LeakSanitizer can neither attribute nor suppress by library name.
# %mpi-env prefixes a singleton `moe-run --mpi` (MPI_Init without mpirun),
# which loads the same plugins: the same options, nothing when not sanitized.
mpi_env = ""
if "ASAN_OPTIONS" in os.environ:
    no_lsan = os.environ["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
    mpirun_cmd += " -x ASAN_OPTIONS=" + no_lsan
    mpi_env = "env ASAN_OPTIONS=" + no_lsan
config.substitutions.append(("%mpirun", mpirun_cmd))
config.substitutions.append(("%mpi-env", mpi_env))
