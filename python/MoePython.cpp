//===- MoePython.cpp - The Python module `moe` (docs/Python.md) -----------===//
//
// pybind11 bindings of the library API, include/moe/Moe.h, and of nothing
// else. NumPy arrays cross without copies wherever the layout allows: a
// bound param is the caller's array (C-contiguous, of the param's element
// type), kept alive by the Executable until it is bound again; results are
// the library's own buffers handed to NumPy. Every llvm::Error becomes a
// `moe.Error` carrying the error's kind; the GIL is released while a
// function runs, so other Python threads go on meanwhile.
//
//===----------------------------------------------------------------------===//
#include "moe/Moe.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace py = pybind11;
using moe::DType;

namespace {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

/// moe.Error and a subclass per kind, created at import. The kinds are the
/// library's (moe::ErrorKind's names); an argument the module itself
/// refuses (a dtype NumPy cannot give, a keyword that is neither an input
/// nor a symbol) takes the kind the library gives the same fault.
PyObject *errorType = nullptr;
const char *const kKinds[] = {"parse", "verify", "pass", "compile", "bind", "shape", "runtime", "io"};
const char *const kClasses[] = {"ParseError", "VerifyError", "PassError", "CompileError",
                                "BindError",  "ShapeError",  "RunError",  "FileError"};
PyObject *kindTypes[std::size(kKinds)] = {};

/// Raises the kind's subclass of moe.Error(message) with `.kind` set.
[[noreturn]] void raise(const std::string &kind, const std::string &message) {
  PyObject *type = errorType;
  for (size_t i = 0; i < std::size(kKinds); ++i)
    if (kind == kKinds[i])
      type = kindTypes[i];
  py::object e = py::reinterpret_borrow<py::object>(type)(message);
  e.attr("kind") = kind;
  e.attr("message") = message;
  PyErr_SetObject(type, e.ptr());
  throw py::error_already_set();
}

/// An error the library returned, raised with its kind (moe::errorKind);
/// `fallback` names an error without one (none of the API's should lack it).
void check(llvm::Error e, const char *fallback) {
  if (!e)
    return;
  std::optional<moe::ErrorKind> k = moe::errorKind(e);
  raise(k ? moe::errorKindName(*k) : fallback, llvm::toString(std::move(e)));
}
template <typename T> T check(llvm::Expected<T> v, const char *fallback) {
  if (!v)
    check(v.takeError(), fallback);
  return std::move(*v);
}

//===----------------------------------------------------------------------===//
// Element types and arrays
//===----------------------------------------------------------------------===//

std::optional<DType> dtypeFromName(const std::string &s) {
  static const std::pair<const char *, DType> names[] = {
      {"f32", DType::F32},   {"f16", DType::F16},   {"bf16", DType::BF16},
      {"i32", DType::I32},   {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0},
      {"mxfp4", DType::MXFP4}};
  for (auto &[n, t] : names)
    if (s == n)
      return t;
  return std::nullopt;
}

/// Elements per block and bytes per block of each stored layout.
std::pair<int64_t, int64_t> blockOf(DType t) {
  switch (t) {
  case DType::F32: case DType::I32: return {1, 4};
  case DType::F16: case DType::BF16: return {1, 2};
  case DType::Q8_0: return {32, 34};
  case DType::Q4_0: return {32, 18};
  case DType::MXFP4: return {32, 17};
  }
  return {1, 4};
}

/// The element type a NumPy array is taken as without a stated dtype.
std::optional<DType> naturalDType(const py::dtype &d) {
  if (d.is(py::dtype::of<float>()) || (d.kind() == 'f' && d.itemsize() == 4))
    return DType::F32;
  if (d.kind() == 'f' && d.itemsize() == 2)
    return DType::F16;
  if (d.kind() == 'i' && d.itemsize() == 4)
    return DType::I32;
  return std::nullopt;
}

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i)
      r += ", ";
    r += std::to_string(s[i]);
  }
  r += "]";
  return r;
}

std::string numpyName(const py::array &a) { return py::str(a.dtype()).cast<std::string>(); }

/// An array seen as a TensorView. Without `stated`, the array's own dtype
/// decides (float32, float16, int32). With it, float32/float16/int32 arrays
/// must agree, and other types come as their stored bytes: bf16 as uint16
/// (or uint8) patterns, q8_0/q4_0/mxfp4 as uint8 GGUF blocks, whose logical
/// shape is `shape` (default: `declared`, the argument's own shape).
moe::TensorView viewOf(const std::string &what, const py::array &a,
                       const std::optional<std::string> &stated,
                       const std::optional<std::vector<int64_t>> &shape,
                       const std::optional<std::vector<int64_t>> &declared) {
  if (!(a.flags() & py::array::c_style))
    raise("shape", what + ": the array is not C-contiguous (np.ascontiguousarray makes a copy "
                          "that is)");
  std::optional<DType> natural = naturalDType(a.dtype());
  std::optional<DType> t = natural;
  if (stated) {
    t = dtypeFromName(*stated);
    if (!t)
      raise("shape", what + ": unknown dtype '" + *stated +
                         "' (f32, f16, bf16, i32, q8_0, q4_0, mxfp4)");
  }
  if (!t)
    raise("shape", what + ": a " + numpyName(a) +
                       " array is not an element type of moe (float32, float16, int32; bf16 "
                       "and block-quantised types as uint8 bytes with dtype=...)");
  moe::TensorView v;
  v.dtype = *t;
  v.data = a.data();
  std::vector<int64_t> own(a.shape(), a.shape() + a.ndim());
  if (natural && stated && *natural != *t)
    raise("shape", what + ": a " + numpyName(a) + " array cannot hold " + *stated);
  if (natural) { // the array is the tensor, element for element
    if (shape && *shape != own)
      raise("shape", what + ": shape= " + shapeStr(*shape) + " differs from the array's " +
                         shapeStr(own));
    v.shape = own;
    return v;
  }
  // Stored bytes of a type NumPy lacks: uint8 (or uint16 for bf16).
  bool bytes = a.dtype().kind() == 'u' && a.itemsize() == 1;
  bool halves = a.dtype().kind() == 'u' && a.itemsize() == 2 && *t == DType::BF16;
  if (!bytes && !halves)
    raise("shape", what + ": " + *stated + " comes as raw " +
                       (*t == DType::BF16 ? "uint16 or uint8" : "uint8") + " data, got " +
                       numpyName(a));
  if (shape)
    v.shape = *shape;
  else if (halves)
    v.shape = own;
  else if (declared)
    v.shape = *declared;
  else
    raise("shape", what + ": give shape= for the " + *stated + " bytes (its dims are symbolic)");
  auto [be, bb] = blockOf(*t);
  int64_t n = 1;
  for (int64_t d : v.shape)
    n *= d;
  if (!v.shape.empty() && v.shape.back() % be)
    raise("shape", what + ": the innermost dim of " + shapeStr(v.shape) + " is not a multiple of " +
                       std::to_string(be) + " (" + *stated + " blocks)");
  int64_t want = n / be * bb, got = (int64_t)a.nbytes();
  if (want != got)
    raise("shape", what + ": " + *stated + " " + shapeStr(v.shape) + " takes " +
                       std::to_string(want) + " bytes, the array has " + std::to_string(got));
  return v;
}

/// A result as a NumPy array owning the library's buffer (no copy); bf16
/// is decoded to float32, block-quantised results stay uint8 bytes.
py::array toNumpy(moe::HostTensor &&h) {
  if (h.dtype == DType::BF16) {
    std::vector<float> f = h.toFloat();
    return py::array_t<float>(h.shape, f.data());
  }
  auto *owned = new moe::HostTensor(std::move(h));
  py::capsule base(owned, [](void *p) { delete static_cast<moe::HostTensor *>(p); });
  std::vector<int64_t> shape = owned->shape;
  switch (owned->dtype) {
  case DType::F32: return py::array(py::dtype::of<float>(), shape, {}, owned->bytes.data(), base);
  case DType::I32: return py::array(py::dtype::of<int32_t>(), shape, {}, owned->bytes.data(), base);
  case DType::F16: return py::array(py::dtype("float16"), shape, {}, owned->bytes.data(), base);
  default:
    return py::array(py::dtype::of<uint8_t>(), {(int64_t)owned->bytes.size()}, {},
                     owned->bytes.data(), base);
  }
}

moe::SymbolValues symbolValues(const py::kwargs &kw) {
  moe::SymbolValues syms;
  for (auto item : kw) {
    if (!py::isinstance<py::int_>(item.second) || py::isinstance<py::bool_>(item.second))
      raise("shape", "symbol '" + py::str(item.first).cast<std::string>() +
                         "': expected an integer value");
    syms.push_back({py::str(item.first), item.second.cast<int64_t>()});
  }
  return syms;
}

//===----------------------------------------------------------------------===//
// Diagnostics
//===----------------------------------------------------------------------===//

/// The Python handler of moe.set_diagnostic_handler; never destroyed (it
/// may be called until the process ends), reset at interpreter exit.
py::object *diagnosticHandler = nullptr;

void setDiagnosticHandler(py::object fn) {
  if (fn.is_none()) {
    moe::setDiagnosticHandler(nullptr);
    return;
  }
  if (!PyCallable_Check(fn.ptr()))
    raise("bind", "set_diagnostic_handler takes a callable(severity, message) or None");
  if (!diagnosticHandler)
    diagnosticHandler = new py::object();
  *diagnosticHandler = fn;
  moe::setDiagnosticHandler([](moe::DiagnosticSeverity s, const std::string &message) {
    if (!Py_IsInitialized())
      return;
    py::gil_scoped_acquire gil; // called from whichever thread is in the library
    try {
      (*diagnosticHandler)(s == moe::DiagnosticSeverity::Warning ? "warning" : "remark", message);
    } catch (py::error_already_set &e) {
      e.discard_as_unraisable("moe diagnostic handler");
    }
  });
}

//===----------------------------------------------------------------------===//
// Module and Executable
//===----------------------------------------------------------------------===//

struct PyModule {
  moe::ModuleHandle m;
};

/// moe.MpiWorld: MPI_COMM_WORLD of a program started under mpirun.
struct PyMpiWorld {
  std::unique_ptr<moe::jit::MpiWorld> world;
};

/// compile()'s and compile_module()'s keywords as library options.
moe::jit::Options compileOptions(unsigned threads, unsigned ranks, py::object comm,
                                 py::object cache) {
  moe::jit::Options o;
  o.threads = threads;
  o.ranks = ranks;
  if (!comm.is_none()) {
    if (!py::isinstance<PyMpiWorld>(comm))
      raise("bind", "comm= takes a moe.MpiWorld");
    o.comm = comm.cast<PyMpiWorld &>().world.get();
  }
  if (py::isinstance<py::str>(cache)) {
    o.cacheDir = cache.cast<std::string>();
  } else if (py::isinstance<py::bool_>(cache)) {
    o.useCache = cache.cast<bool>();
  } else if (!cache.is_none()) {
    raise("bind", "cache= takes True, False or a directory");
  }
  return o;
}

struct PyExecutable {
  // Declared before `exe`, so destroyed after it.
  /// The moe.MpiWorld its ranks talk through, kept alive with it.
  py::object comm;
  /// Arrays bound with bind(), kept alive while bound (the library reads
  /// them in place).
  std::map<std::string, py::object> arrays;
  moe::jit::Executable exe;

  using Inputs = std::vector<std::pair<std::string, moe::TensorView>>;
  using Symbols = std::vector<std::pair<std::string, int64_t>>;

  std::optional<std::vector<int64_t>> declaredShape(const std::string &name) {
    auto s = exe.argumentShape(name, {});
    if (!s) {
      llvm::consumeError(s.takeError());
      return std::nullopt;
    }
    return *s;
  }

  void bind(const std::string &name, py::array a, std::optional<std::string> dtype,
            std::optional<std::vector<int64_t>> shape) {
    moe::TensorView v = viewOf("param '" + name + "'", a, dtype, shape, declaredShape(name));
    check(exe.bindParam(name, v), "bind");
    arrays[name] = a;
  }

  /// Splits keyword arguments into inputs (by the function's input names),
  /// `out` (result arrays, unless an input has that name) and symbols
  /// (integers under any other name).
  void split(const py::kwargs &kw, Inputs &inputs, Symbols &symbols,
             std::vector<py::array> &keep, py::object *out = nullptr) {
    std::vector<std::string> names = exe.inputNames();
    for (auto item : kw) {
      std::string key = py::str(item.first);
      py::handle val = item.second;
      bool isInput = std::find(names.begin(), names.end(), key) != names.end();
      if (out && key == "out" && !isInput) {
        *out = py::reinterpret_borrow<py::object>(val);
      } else if (isInput) {
        if (!py::isinstance<py::array>(val))
          raise("shape", "input '" + key + "': expected a NumPy array, got " +
                             py::str(py::type::of(val)).cast<std::string>());
        // An input is read during the call only: a strided one is copied.
        py::array a = py::array::ensure(val, py::array::c_style);
        keep.push_back(a);
        // bf16 comes as its uint16 bit patterns, as results do with out=.
        std::optional<std::string> stated;
        if (a.dtype().kind() == 'u' && a.itemsize() == 2)
          stated = "bf16";
        inputs.push_back({key, viewOf("input '" + key + "'", a, stated, std::nullopt,
                                      std::nullopt)});
      } else if (py::isinstance<py::int_>(val) && !py::isinstance<py::bool_>(val)) {
        symbols.push_back({key, val.cast<int64_t>()});
      } else {
        raise("bind", "'" + key + "' is neither an input of the function (" +
                           py::str(py::cast(names)).cast<std::string>() +
                           ") nor an integer symbol value");
      }
    }
  }

  /// A writable result array seen as a MutableTensorView (bf16 as uint16).
  static moe::MutableTensorView outView(size_t i, py::handle h) {
    std::string what = "out[" + std::to_string(i) + "]";
    if (!py::isinstance<py::array>(h))
      raise("shape", what + ": expected a NumPy array, got " +
                         py::str(py::type::of(h)).cast<std::string>());
    py::array a = py::reinterpret_borrow<py::array>(h);
    if (!(a.flags() & py::array::c_style) || !a.writeable())
      raise("shape", what + ": the array must be C-contiguous and writable");
    moe::MutableTensorView v;
    if (std::optional<DType> t = naturalDType(a.dtype()))
      v.dtype = *t;
    else if (a.dtype().kind() == 'u' && a.itemsize() == 2)
      v.dtype = DType::BF16;
    else
      raise("shape", what + ": a " + numpyName(a) +
                         " array cannot hold a result (float32, float16, int32; uint16 for bf16)");
    v.shape.assign(a.shape(), a.shape() + a.ndim());
    v.data = a.mutable_data();
    return v;
  }

  /// exe(..., out=arrays): the kernels write the results into the arrays.
  py::object callInto(py::object outs, Inputs &inputs, Symbols &symbols) {
    bool single = py::isinstance<py::array>(outs);
    py::tuple arrays = single ? py::make_tuple(outs) : py::tuple(outs);
    std::vector<moe::MutableTensorView> views;
    for (size_t i = 0; i < arrays.size(); ++i)
      views.push_back(outView(i, arrays[i]));
    llvm::Error e = llvm::Error::success();
    {
      py::gil_scoped_release nogil;
      e = exe.run(inputs, views, symbols);
    }
    check(std::move(e), "runtime");
    return single ? outs : py::object(arrays);
  }

  py::object call(py::kwargs kw) {
    Inputs inputs;
    Symbols symbols;
    std::vector<py::array> keep;
    py::object outs;
    split(kw, inputs, symbols, keep, &outs);
    if (outs)
      return callInto(outs, inputs, symbols);
    std::vector<moe::HostTensor> out;
    llvm::Error e = llvm::Error::success();
    {
      py::gil_scoped_release nogil;
      e = exe.run(inputs, out, symbols);
    }
    check(std::move(e), "runtime");
    if (out.size() == 1)
      return toNumpy(std::move(out[0]));
    py::tuple t(out.size());
    for (size_t i = 0; i < out.size(); ++i)
      t[i] = toNumpy(std::move(out[i]));
    return t;
  }

  /// The same call timed `repeat` times from C++ (no Python between runs):
  /// what a C++ embedder pays, for bench/python_call.py.
  std::vector<double> timeNative(int repeat, py::kwargs kw) {
    Inputs inputs;
    Symbols symbols;
    std::vector<py::array> keep;
    split(kw, inputs, symbols, keep);
    std::vector<double> ms;
    llvm::Error e = llvm::Error::success();
    {
      py::gil_scoped_release nogil;
      std::vector<moe::HostTensor> out;
      for (int i = 0; i < repeat && !e; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        e = exe.run(inputs, out, symbols);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                         .count());
      }
    }
    check(std::move(e), "runtime");
    return ms;
  }
};

} // namespace

PYBIND11_MODULE(moe, mod) {
  mod.doc() = "moe: a graph compiler for Mixture-of-Experts layers (docs/Python.md)";

  errorType = PyErr_NewExceptionWithDoc(
      "moe.Error",
      "An error of the moe library. `.kind` says what failed: 'parse', 'verify', 'pass', "
      "'compile', 'bind' (unknown or missing names), 'shape' (element types, shapes, symbol "
      "values), 'runtime', 'io'; `.message` is the library's text (file:line:col "
      "diagnostics included). Each kind has its subclass (moe.ShapeError, ...).",
      PyExc_RuntimeError, nullptr);
  mod.add_object("Error", py::reinterpret_borrow<py::object>(errorType));
  for (size_t i = 0; i < std::size(kKinds); ++i) {
    std::string name = std::string("moe.") + kClasses[i];
    kindTypes[i] = PyErr_NewException(name.c_str(), errorType, nullptr);
    mod.add_object(kClasses[i], py::reinterpret_borrow<py::object>(kindTypes[i]));
  }

  py::class_<PyModule>(mod, "Module", "A parsed and verified module.")
      .def_property_readonly(
          "functions", [](const PyModule &m) { return m.m.functionNames(); },
          "The names of the module's functions.")
      .def(
          "run_pipeline",
          [](PyModule &m, const std::string &p) { check(moe::runPipeline(m.m, p), "pass"); },
          py::arg("pipeline"),
          "Runs a pass pipeline (moe-opt's -p syntax, e.g. 'default'), verifying after each pass.")
      .def("__str__", [](const PyModule &m) { return m.m.str(); })
      .def("__repr__", [](const PyModule &m) {
        std::string r = "<moe.Module functions=[";
        auto names = m.m.functionNames();
        for (size_t i = 0; i < names.size(); ++i)
          r += (i ? ", @" : "@") + names[i];
        return r + "]>";
      });

  mod.def(
      "parse",
      [](const std::string &text, const std::string &name) {
        return PyModule{check(moe::parse(text, name), "parse")};
      },
      py::arg("text"), py::arg("name") = "<string>",
      "Parses and verifies module text; errors carry file:line:col diagnostics.");
  mod.def(
      "parse_file",
      [](const std::string &path) { return PyModule{check(moe::parseFile(path), "parse")}; },
      py::arg("path"));

  py::class_<moe::TensorDesc>(mod, "TensorDesc",
                              "An argument's or result's element type and shape for given "
                              "symbol values, with its declared type.")
      .def_property_readonly("dtype", [](const moe::TensorDesc &d) { return moe::dtypeName(d.dtype); })
      .def_property_readonly("shape",
                             [](const moe::TensorDesc &d) { return py::tuple(py::cast(d.shape)); })
      .def_readonly("type", &moe::TensorDesc::type)
      .def("__repr__", [](const moe::TensorDesc &d) {
        return std::string("TensorDesc(") + moe::dtypeName(d.dtype) + ", " + shapeStr(d.shape) +
               ", '" + d.type + "')";
      });

  py::class_<PyExecutable>(mod, "Executable", "A compiled function with its bound params.")
      .def_property_readonly("inputs", [](const PyExecutable &e) { return e.exe.inputNames(); })
      .def_property_readonly("params", [](const PyExecutable &e) { return e.exe.paramNames(); })
      .def(
          "shape",
          [](const PyExecutable &e, const std::string &name, py::kwargs symbols) {
            PyExecutable::Symbols syms;
            for (auto item : symbols)
              syms.push_back({py::str(item.first), item.second.cast<int64_t>()});
            auto s = check(e.exe.argumentShape(name, syms), "shape");
            return py::tuple(py::cast(s));
          },
          py::arg("name"),
          "The shape of argument `name` for the given symbol values, e.g. shape('x', T=7).")
      .def_property_readonly(
          "symbols",
          [](const PyExecutable &e) {
            py::dict d;
            for (const moe::SymbolInfo &s : e.exe.symbols())
              d[py::str(s.name)] = py::make_tuple(s.lo, s.hi);
            return d;
          },
          "The function's symbols and their declared ranges, {'T': (1, 512)}.")
      .def(
          "argument",
          [](const PyExecutable &e, const std::string &name, py::kwargs kw) {
            return check(e.exe.argumentDesc(name, symbolValues(kw)), "shape");
          },
          py::arg("name"),
          "Argument `name`'s TensorDesc for the given symbol values, e.g. argument('x', T=7).")
      .def(
          "results",
          [](const PyExecutable &e, py::kwargs kw) {
            moe::SymbolValues syms = symbolValues(kw);
            std::vector<moe::TensorDesc> r;
            for (unsigned i = 0; i < e.exe.numResults(); ++i)
              r.push_back(check(e.exe.resultDesc(i, syms), "shape"));
            return r;
          },
          "Each result's TensorDesc for the given symbol values.")
      .def(
          "infer_symbols",
          [](PyExecutable &e, py::kwargs kw) {
            PyExecutable::Inputs inputs;
            PyExecutable::Symbols given;
            std::vector<py::array> keep;
            e.split(kw, inputs, given, keep);
            py::dict d;
            for (auto &[n, v] : check(e.exe.inferSymbols(inputs, given), "bind"))
              d[py::str(n)] = v;
            return d;
          },
          "Every symbol's value for a call with these inputs (and symbols), as the call infers it.")
      .def_property_readonly("ranks", [](const PyExecutable &e) { return e.exe.ranks(); },
                             "The function's rank count (1 unless it is split).")
      .def_property_readonly(
          "derived_params",
          [](const PyExecutable &e) {
            py::dict d;
            for (const moe::jit::DerivedParam &p : e.exe.derivedParams())
              d[py::str(p.name)] = p.from;
            return d;
          },
          "The params the library builds from others, {'gate_up_exps': ['gate_exps', "
          "'up_exps']}: bind the sources, never these.")
      .def_property_readonly("cache_key", [](const PyExecutable &e) { return e.exe.cacheKey(); },
                             "The object cache key of the compiled kernels (moe-run's too).")
      .def("bind", &PyExecutable::bind, py::arg("name"), py::arg("array"), py::kw_only(),
           py::arg("dtype") = py::none(), py::arg("shape") = py::none(),
           "Binds param `name` to `array` in place (no copy); the Executable keeps the "
           "array alive. After changing its values, bind it again.")
      .def(
          "bind_gguf",
          [](PyExecutable &e, const std::string &path) {
            check(e.exe.bindGgufParams(path), "bind");
          },
          py::arg("path"), "Binds every param not bound yet from a GGUF model file.")
      .def(
          "bind_random",
          [](PyExecutable &e, uint64_t seed) { check(e.exe.bindRandomParams(seed), "bind"); },
          py::arg("seed"), "Binds every param not bound yet as moe-run --seed does.")
      .def("__call__", &PyExecutable::call,
           "Runs the function: inputs and symbols as keywords, exe(x=array, T=7); returns "
           "the result (a tuple of them when there are several).")
      .def("time_native", &PyExecutable::timeNative, py::arg("repeat"),
           "Runs the same call `repeat` times from C++ and returns each run's milliseconds "
           "(the C++ side of bench/python_call.py).")
      .def_property_readonly("compile_ms", [](const PyExecutable &e) { return e.exe.compileMs(); })
      .def_property_readonly("from_cache", [](const PyExecutable &e) { return e.exe.fromCache(); })
      .def_property_readonly(
          "kernels_shared", [](const PyExecutable &e) { return e.exe.kernelsShared(); },
          "Kernel definitions not compiled because an identical one was (compile_module).");

  py::class_<PyMpiWorld>(mod, "MpiWorld",
                         "MPI_COMM_WORLD for a program started under mpirun (MPI_Init when "
                         "created, MPI_Finalize when released; one per process). Pass it as "
                         "compile(..., comm=world): this process then runs its rank.")
      .def(py::init([] {
        return std::unique_ptr<PyMpiWorld>(
            new PyMpiWorld{check(moe::jit::MpiWorld::init(nullptr, nullptr), "runtime")});
      }))
      .def_property_readonly("rank", [](const PyMpiWorld &w) { return w.world->rank(); })
      .def_property_readonly("size", [](const PyMpiWorld &w) { return w.world->size(); })
      .def(
          "abort", [](PyMpiWorld &w, int code) { w.world->abort(code); }, py::arg("code") = 1,
          "Ends every process of the job (MPI_Abort): what a rank whose call failed must do "
          "instead of returning to a collective the others wait in.");

  mod.def("set_diagnostic_handler", &setDiagnosticHandler, py::arg("handler"),
          "Sends the library's warnings and remarks to handler(severity, message), severity "
          "'warning' or 'remark' (default: printed to stderr); None restores the default.");
  // The handler calls into Python: back to the default before Python ends.
  py::module_::import("atexit").attr("register")(
      py::cpp_function([] { moe::setDiagnosticHandler(nullptr); }));

  mod.def(
      "compile",
      [](const PyModule &m, const std::string &fn, unsigned threads, unsigned ranks,
         py::object comm, py::object cache) {
        moe::jit::Options o = compileOptions(threads, ranks, comm, cache);
        std::optional<llvm::Expected<moe::jit::Executable>> exe;
        {
          py::gil_scoped_release nogil; // compiling takes a while
          exe.emplace(moe::jit::compile(m.m, fn, o));
        }
        return std::unique_ptr<PyExecutable>(
            new PyExecutable{comm, {}, check(std::move(*exe), "compile")});
      },
      py::arg("module"), py::arg("function"), py::kw_only(), py::arg("threads") = 0,
      py::arg("ranks") = 0, py::arg("comm") = py::none(), py::arg("cache") = py::none(),
      "Compiles `function` of `module` to native code; threads=0 uses every core; ranks= "
      "the rank count of a split function (0: its own), run as threads of this process, or "
      "with comm=moe.MpiWorld() this process's rank under mpirun; cache=False skips the "
      "object cache, cache='dir' puts it there.");
  mod.def(
      "compile_module",
      [](const PyModule &m, unsigned threads, unsigned ranks, py::object comm, py::object cache) {
        moe::jit::Options o = compileOptions(threads, ranks, comm, cache);
        std::optional<llvm::Expected<std::vector<moe::jit::Executable>>> exes;
        {
          py::gil_scoped_release nogil;
          exes.emplace(moe::jit::compileModule(m.m, o));
        }
        std::vector<std::unique_ptr<PyExecutable>> out;
        for (auto &e : check(std::move(*exes), "compile"))
          out.push_back(std::unique_ptr<PyExecutable>(new PyExecutable{comm, {}, std::move(e)}));
        return out;
      },
      py::arg("module"), py::kw_only(), py::arg("threads") = 0, py::arg("ranks") = 0,
      py::arg("comm") = py::none(), py::arg("cache") = py::none(),
      "Compiles every function of `module` together (a whole model's blocks): a list of "
      "executables in the order of module.functions. Kernels identical in content are "
      "compiled once and shared, into one object-cache entry, on every core; the keywords "
      "are compile()'s.");
}
