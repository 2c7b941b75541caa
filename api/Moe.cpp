//===- Moe.cpp - The library API (include/moe/Moe.h) ----------------------===//
//
// A thin layer over the internal ones: parsing and verification (ir/),
// pipelines (passes/), compilation and runs (runtime/Executable). Params
// bound from caller memory are passed to the kernels as they are; inputs
// too. Only f16/bf16 results are decoded when the caller asks for floats.
// Every error leaving this file is an ApiError with its kind: the internal
// layers' string errors are wrapped (withKind) at the entry point that
// knows what kind of failure they are.
//
//===----------------------------------------------------------------------===//
#include "moe/Moe.h"
#include "ir/Error.h"

#include "ir/ParamDerive.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"
#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/Formats.h"
#include "runtime/GgufSource.h"
#include "runtime/Interpreter.h"
#include "runtime/Random.h"

#include "fmt/format.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <mutex>

using namespace moe;

//===----------------------------------------------------------------------===//
// Errors and diagnostics
//===----------------------------------------------------------------------===//

char ApiError::ID = 0;

ApiError::ApiError(ErrorKind kind, std::string message) : k(kind), msg(std::move(message)) {}
void ApiError::log(llvm::raw_ostream &os) const { os << msg; }
std::error_code ApiError::convertToErrorCode() const { return llvm::inconvertibleErrorCode(); }
bool ApiError::isA(const void *const classID) const {
  return classID == detail::errorKindID(k) || ErrorInfo::isA(classID);
}

static constexpr ErrorKind kKinds[] = {ErrorKind::Parse,   ErrorKind::Verify, ErrorKind::Pass,
                                       ErrorKind::Compile, ErrorKind::Bind,   ErrorKind::Shape,
                                       ErrorKind::Runtime, ErrorKind::IO};

const char *moe::errorKindName(ErrorKind k) {
  static const char *names[] = {"parse", "verify", "pass", "compile",
                                "bind",  "shape",  "runtime", "io"};
  return names[(int)k];
}

const void *moe::detail::errorKindID(ErrorKind k) {
  static char ids[std::size(kKinds)];
  return &ids[(int)k];
}

template <ErrorKind K> static std::optional<ErrorKind> ifKind(const llvm::Error &e) {
  return e.isA<detail::ErrorKindTag<K>>() ? std::optional<ErrorKind>(K) : std::nullopt;
}

std::optional<ErrorKind> moe::errorKind(const llvm::Error &e) {
  using K = ErrorKind;
  for (auto probe : {ifKind<K::Parse>, ifKind<K::Verify>, ifKind<K::Pass>, ifKind<K::Compile>,
                     ifKind<K::Bind>, ifKind<K::Shape>, ifKind<K::Runtime>, ifKind<K::IO>})
    if (auto k = probe(e))
      return k;
  return std::nullopt;
}

namespace {
/// An ApiError of kind `k` from a message or a format string.
template <typename... Args>
llvm::Error apiErr(ErrorKind k, fmt::format_string<Args...> f, Args &&...args) {
  return llvm::make_error<ApiError>(k, fmt::format(f, std::forward<Args>(args)...));
}
llvm::Error apiErr(ErrorKind k, std::string message) {
  return llvm::make_error<ApiError>(k, std::move(message));
}
/// `e` as an ApiError: of kind `k` unless it already is one (an inner
/// entry point knew better); success stays success.
llvm::Error withKind(ErrorKind k, llvm::Error e) {
  if (!e)
    return e;
  if (e.isA<ApiError>())
    return e;
  return apiErr(k, llvm::toString(std::move(e)));
}
template <typename T> llvm::Expected<T> withKind(ErrorKind k, llvm::Expected<T> x) {
  if (!x)
    return withKind(k, x.takeError());
  return x;
}
} // namespace

static std::mutex diagMutex;
static DiagnosticHandler diagHandler;

DiagnosticHandler moe::setDiagnosticHandler(DiagnosticHandler h) {
  std::lock_guard<std::mutex> lock(diagMutex);
  std::swap(h, diagHandler);
  return h;
}

/// Sends a warning or remark to the caller's handler, or to standard error.
static void diagnose(DiagnosticSeverity s, const std::string &message) {
  std::lock_guard<std::mutex> lock(diagMutex);
  if (diagHandler) {
    diagHandler(s, message);
    return;
  }
  llvm::errs() << (s == DiagnosticSeverity::Warning ? "moe: warning: " : "moe: remark: ")
               << message << "\n";
}

static ElemType toElem(DType t) {
  switch (t) {
  case DType::F32: return ElemType::F32;
  case DType::F16: return ElemType::F16;
  case DType::BF16: return ElemType::BF16;
  case DType::I32: return ElemType::I32;
  case DType::Q8_0: return ElemType::Q8_0;
  case DType::Q4_0: return ElemType::Q4_0;
  case DType::MXFP4: return ElemType::MXFP4;
  }
  return ElemType::F32;
}

static DType toDType(ElemType t) {
  switch (t) {
  case ElemType::F32: return DType::F32;
  case ElemType::F16: return DType::F16;
  case ElemType::BF16: return DType::BF16;
  case ElemType::I32: return DType::I32;
  case ElemType::Q8_0: return DType::Q8_0;
  case ElemType::Q4_0: return DType::Q4_0;
  case ElemType::MXFP4: return DType::MXFP4;
  }
  return DType::F32;
}

const char *moe::dtypeName(DType t) { return elemTypeName(toElem(t)).data(); }

int64_t HostTensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<float> HostTensor::toFloat() const {
  std::vector<float> out(numElements());
  dequantizeRow(toElem(dtype), bytes.data(), out.data(), (int64_t)out.size());
  return out;
}

//===----------------------------------------------------------------------===//
// Modules
//===----------------------------------------------------------------------===//

ModuleHandle::ModuleHandle(std::unique_ptr<Module> m) : m(std::move(m)) {}
ModuleHandle::ModuleHandle(ModuleHandle &&) noexcept = default;
ModuleHandle &ModuleHandle::operator=(ModuleHandle &&) noexcept = default;
ModuleHandle::~ModuleHandle() = default;

std::string ModuleHandle::str() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  printModule(*m, os);
  return s;
}

std::vector<std::string> ModuleHandle::functionNames() const {
  std::vector<std::string> names;
  for (auto &f : m->functions)
    names.push_back(f->getName());
  return names;
}

/// Collects diagnostics as text (file:line:col with the source line).
static void collectInto(DiagEngine &diag, llvm::SourceMgr *sm, std::string &messages) {
  diag.setHandler([sm, &messages](const Diagnostic &d) {
    std::string s;
    llvm::raw_string_ostream os(s);
    static const llvm::SourceMgr::DiagKind kinds[] = {
        llvm::SourceMgr::DK_Error, llvm::SourceMgr::DK_Warning, llvm::SourceMgr::DK_Remark,
        llvm::SourceMgr::DK_Note};
    if (sm && d.loc.isValid())
      sm->PrintMessage(os, d.loc, kinds[(int)d.severity], d.message);
    else
      os << "error: " << d.message << "\n";
    messages += os.str();
  });
}

llvm::Expected<ModuleHandle> moe::parse(llvm::StringRef text, llvm::StringRef bufferName) {
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, bufferName), llvm::SMLoc());
  std::string messages;
  DiagEngine diag(&sm);
  collectInto(diag, &sm, messages);
  auto m = parseModule(sm, 1, diag);
  if (!m)
    return apiErr(ErrorKind::Parse, messages.empty() ? std::string("invalid module") : messages);
  if (!verifyModule(*m, diag))
    return apiErr(ErrorKind::Verify, messages.empty() ? std::string("invalid module") : messages);
  m->clearLocations(); // they point into `sm`, which dies here
  return ModuleHandle(std::move(m));
}

llvm::Expected<ModuleHandle> moe::parseFile(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (!buf)
    return apiErr(ErrorKind::IO, "cannot read '{}': {}", path.str(), buf.getError().message());
  return parse((*buf)->getBuffer(), path);
}

llvm::Error moe::runPipeline(ModuleHandle &m, llvm::StringRef pipeline) {
  PassManager pm;
  if (auto e = pm.addPipeline(pipeline))
    return withKind(ErrorKind::Pass, std::move(e));
  // Errors go into the returned error; warnings and remarks (a rewrite a
  // pass refused, and why) to the diagnostic handler as they come.
  std::string messages;
  DiagEngine diag;
  diag.setHandler([&messages](const Diagnostic &d) {
    switch (d.severity) {
    case Severity::Warning:
      diagnose(DiagnosticSeverity::Warning, d.message);
      return;
    case Severity::Remark:
      diagnose(DiagnosticSeverity::Remark, d.message);
      return;
    case Severity::Error:
    case Severity::Note:
      messages += (d.severity == Severity::Error ? "error: " : "note: ") + d.message + "\n";
      return;
    }
  });
  if (auto e = pm.run(m.get(), diag))
    return apiErr(ErrorKind::Pass, "{}{}", messages, llvm::toString(std::move(e)));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Executables
//===----------------------------------------------------------------------===//

struct jit::Executable::Impl {
  std::unique_ptr<moe::Executable> exe;
  std::vector<const void *> bound;       ///< per argument (params only)
  std::vector<Tensor> owned;             ///< random params
  std::vector<std::vector<uint8_t>> storage; ///< f16/bf16 random params
  std::vector<std::shared_ptr<const gguf::GgufFile>> files; ///< mapped models
  std::vector<std::unique_ptr<Binder>> binders; ///< derived params built from them
  /// Bumped by every binding: weights repacked for the kernels are reused
  /// between two bindings (moe::RunOptions::paramsVersion).
  uint64_t paramsVersion = moe::Executable::newParamsVersion();
};

jit::Executable::Executable(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
jit::Executable::Executable(Executable &&) noexcept = default;
jit::Executable &jit::Executable::operator=(Executable &&) noexcept = default;
jit::Executable::~Executable() = default;

llvm::Expected<jit::Executable> jit::compile(const ModuleHandle &m, llvm::StringRef function,
                                             const Options &opts) {
  const Function *f = m.get().lookup(function);
  if (!f)
    return apiErr(ErrorKind::Compile, "no function @{} in the module", function.str());
  ExecOptions eo;
  eo.threads = opts.threads;
  eo.jit.useCache = opts.useCache;
  eo.jit.cacheDir = opts.cacheDir;
  eo.jit.warn = [](const std::string &w) { diagnose(DiagnosticSeverity::Warning, w); };
  auto exe = moe::Executable::compile(*f, eo);
  if (!exe)
    return withKind(ErrorKind::Compile, exe.takeError());
  auto impl = std::make_unique<Executable::Impl>();
  impl->bound.assign(f->getNumArguments(), nullptr);
  impl->exe = std::move(*exe);
  return Executable(std::move(impl));
}

std::vector<std::string> jit::Executable::inputNames() const {
  std::vector<std::string> n;
  for (const Value *a : impl->exe->function().getArguments())
    if (!a->isParam())
      n.push_back(a->getName());
  return n;
}

std::vector<std::string> jit::Executable::paramNames() const {
  std::vector<std::string> n;
  for (const Value *a : impl->exe->function().getArguments())
    if (a->isParam())
      n.push_back(a->getName());
  return n;
}

/// A type's shape with every dim the bindings determine evaluated and the
/// others as written: `[5, 64]`, `[5, N]`.
static std::string concreteShapeStr(const TensorType &t, const SymbolBindings &syms) {
  std::vector<std::string> dims;
  for (const DimExpr &d : t.dims) {
    std::optional<int64_t> v = d.evaluate(syms);
    dims.push_back(v ? std::to_string(*v) : d.str());
  }
  return "[" + llvm::join(dims, ", ") + "]";
}

/// `T = 5` for the symbols of `t`'s dims, each with where its value came
/// from when `from` knows (`T = 7 from %x`).
static std::string bindingsOf(const TensorType &t, const SymbolBindings &syms,
                              const llvm::StringMap<std::string> *from) {
  std::vector<std::string> names;
  for (const DimExpr &d : t.dims)
    d.collectSymbols(names);
  std::vector<std::string> parts;
  for (auto &n : names) {
    auto it = syms.find(n);
    if (it == syms.end() ||
        llvm::is_contained(parts, fmt::format("{} = {}", n, it->second)))
      continue;
    std::string p = fmt::format("{} = {}", n, it->second);
    if (from && from->count(n) && !from->lookup(n).empty())
      p += " from " + from->lookup(n);
    parts.push_back(p);
  }
  return llvm::join(parts, ", ");
}

/// Checks a view against an argument's type: element type, rank, and every
/// dim that is static (all of them when `syms` binds the symbols). Shape
/// errors say the shape expected for the bound symbols:
/// `expected [5, 64] (T x 64 with T = 5), got [7, 64]`.
static llvm::Error checkView(const Value &a, const TensorView &v, const SymbolBindings *syms,
                             const llvm::StringMap<std::string> *from = nullptr) {
  const TensorType &t = a.getType();
  if (toElem(v.dtype) != t.elem)
    return apiErr(ErrorKind::Shape, "%{}: expected {} ({}), got {}", a.getName(),
                  elemTypeName(t.elem).str(), t.str(), dtypeName(v.dtype));
  if ((int64_t)v.shape.size() != t.rank())
    return apiErr(ErrorKind::Shape, "%{}: expected rank {} ({}), got shape {}", a.getName(),
                  t.rank(), t.str(), formatShape(v.shape));
  for (size_t d = 0; d < v.shape.size(); ++d) {
    std::optional<int64_t> want =
        syms ? t.dims[d].evaluate(*syms) : t.dims[d].getConstant();
    if (want && *want == v.shape[d])
      continue;
    if (want && syms && !t.isStatic())
      return apiErr(ErrorKind::Shape, "%{}: expected {} ({} with {}), got {}", a.getName(),
                    concreteShapeStr(t, *syms), t.shapeStr(), bindingsOf(t, *syms, from),
                    formatShape(v.shape));
    if (want)
      return apiErr(ErrorKind::Shape, "%{}: expected shape {} ({}), got {}", a.getName(),
                    concreteShapeStr(t, syms ? *syms : SymbolBindings()), t.str(),
                    formatShape(v.shape));
  }
  if (!v.data && !v.shape.empty()) {
    int64_t n = 1;
    for (int64_t x : v.shape)
      n *= x;
    if (n > 0)
      return apiErr(ErrorKind::Shape, "%{}: null data", a.getName());
  }
  if (auto e = checkShape(t.elem, v.shape))
    return apiErr(ErrorKind::Shape, "%{}: {}", a.getName(), llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error jit::Executable::bindParam(llvm::StringRef name, const TensorView &v) {
  const Function &f = impl->exe->function();
  const Value *a = f.lookupArgument(name);
  if (!a || !a->isParam())
    return apiErr(ErrorKind::Bind, "@{} has no param '{}'", f.getName(), name.str());
  if (auto e = checkView(*a, v, nullptr))
    return e;
  impl->bound[a->getArgIndex()] = v.data;
  impl->paramsVersion = moe::Executable::newParamsVersion();
  return llvm::Error::success();
}

/// Calls `fn` with each param not bound yet and its concrete shape; params
/// with symbolic dims are an error (the library binds params before symbols).
namespace moe::jit {
/// The internals of an Executable, for the helpers of this file.
struct ImplAccess {
  static Executable::Impl &of(Executable &e) { return *e.impl; }
};
} // namespace moe::jit

static llvm::Error
forEachUnboundParam(jit::Executable &exe,
                    llvm::function_ref<llvm::Error(const Value &, llvm::ArrayRef<int64_t>)> fn) {
  auto &impl = jit::ImplAccess::of(exe);
  for (const Value *a : impl.exe->function().getArguments()) {
    if (!a->isParam() || impl.bound[a->getArgIndex()])
      continue;
    auto shape = a->getType().evaluate({});
    if (!shape)
      return apiErr(ErrorKind::Bind, "param %{} has symbolic dims ({}); bind it with bindParam",
                    a->getName(), a->getType().str());
    if (auto e = fn(*a, *shape))
      return e;
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Queries and symbols
//===----------------------------------------------------------------------===//

/// The given symbol values as bindings: each declared, given once, and in
/// its range.
static llvm::Expected<SymbolBindings> bindingsFrom(const Function &f, const SymbolValues &given) {
  SymbolBindings syms;
  for (auto &[n, v] : given) {
    const SymbolDecl *s = f.lookupSymbol(n);
    if (!s)
      return apiErr(ErrorKind::Bind, "symbol {} is given but @{} declares no such symbol", n,
                    f.getName());
    if (!syms.insert({n, v}).second)
      return apiErr(ErrorKind::Bind, "symbol {} is given twice", n);
    if (v < s->lo || v > s->hi)
      return apiErr(ErrorKind::Shape, "symbol {} = {} is outside its range [{}, {}]", n, v,
                    s->lo, s->hi);
  }
  return syms;
}

std::vector<SymbolInfo> jit::Executable::symbols() const {
  std::vector<SymbolInfo> out;
  for (const SymbolDecl &s : impl->exe->function().symbols())
    out.push_back({s.name, s.lo, s.hi});
  return out;
}

unsigned jit::Executable::numResults() const {
  return (unsigned)impl->exe->function().resultTypes().size();
}

/// `t` for the given symbols: each symbol of its dims must be given.
static llvm::Expected<TensorDesc> describe(const Function &f, const TensorType &t,
                                           const SymbolValues &given, const std::string &what) {
  auto syms = bindingsFrom(f, given);
  if (!syms)
    return syms.takeError();
  std::vector<std::string> names;
  for (const DimExpr &d : t.dims)
    d.collectSymbols(names);
  for (auto &n : names)
    if (!syms->count(n))
      return apiErr(ErrorKind::Bind, "{} ({}): symbol {} is not given", what, t.str(), n);
  auto shape = evaluateShape(t, *syms);
  if (!shape)
    return apiErr(ErrorKind::Shape, "{}: {}", what, llvm::toString(shape.takeError()));
  return TensorDesc{toDType(t.elem), std::move(*shape), t.str()};
}

llvm::Expected<TensorDesc> jit::Executable::argumentDesc(llvm::StringRef name,
                                                         const SymbolValues &symbols) const {
  const Function &f = impl->exe->function();
  const Value *a = f.lookupArgument(name);
  if (!a)
    return apiErr(ErrorKind::Bind, "@{} has no argument '{}'", f.getName(), name.str());
  return describe(f, a->getType(), symbols, "%" + name.str());
}

llvm::Expected<TensorDesc> jit::Executable::resultDesc(unsigned index,
                                                       const SymbolValues &symbols) const {
  const Function &f = impl->exe->function();
  if (index >= f.resultTypes().size())
    return apiErr(ErrorKind::Bind, "@{} has {} result{}, not a result {}", f.getName(),
                  f.resultTypes().size(), f.resultTypes().size() == 1 ? "" : "s", index);
  return describe(f, f.resultTypes()[index], symbols, fmt::format("result {}", index));
}

llvm::Expected<std::vector<int64_t>>
jit::Executable::argumentShape(llvm::StringRef name, const SymbolValues &symbols) const {
  auto d = argumentDesc(name, symbols);
  if (!d)
    return d.takeError();
  return std::move(d->shape);
}

/// The value of the symbol `d` is an affine function of (`a*S + b`, a > 0),
/// as (S, a, b); nullopt for constants and other polynomials.
static std::optional<std::tuple<std::string, int64_t, int64_t>> affineSymbol(const DimExpr &d) {
  std::optional<std::tuple<std::string, int64_t, int64_t>> r;
  int64_t b = 0;
  for (auto &[mono, coeff] : d.getTerms()) {
    if (mono.empty()) {
      b = coeff;
      continue;
    }
    if (r || mono.size() != 1 || mono[0].second != 1 || coeff <= 0)
      return std::nullopt;
    r = std::make_tuple(mono[0].first, coeff, int64_t(0));
  }
  if (r)
    std::get<2>(*r) = b;
  return r;
}

/// inferSymbols' work, with where each value came from (for messages).
static llvm::Expected<SymbolBindings>
inferBindings(const Function &f, const std::vector<std::pair<std::string, TensorView>> &inputs,
              const SymbolValues &given, llvm::StringMap<std::string> &from) {
  auto syms = bindingsFrom(f, given);
  if (!syms)
    return syms.takeError();
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (!a || a->isParam() || (int64_t)v.shape.size() != a->getType().rank())
      continue; // reported by run, with the rest of the input checks
    const TensorType &t = a->getType();
    for (size_t d = 0; d < v.shape.size(); ++d) {
      auto aff = affineSymbol(t.dims[d]);
      if (!aff)
        continue;
      auto &[sym, mul, add] = *aff;
      int64_t n = v.shape[d] - add;
      auto it = syms->find(sym);
      if (n < 0 || n % mul != 0 || (it != syms->end() && it->second != n / mul)) {
        if (it != syms->end()) // the shape these bindings expect
          return checkView(*a, v, &*syms, &from);
        return apiErr(ErrorKind::Shape, "%{}: dim {} is {}, which is no value of {}", name, d,
                      v.shape[d], t.dims[d].str());
      }
      if (it == syms->end()) {
        const SymbolDecl *s = f.lookupSymbol(sym);
        if (s && (n / mul < s->lo || n / mul > s->hi))
          return apiErr(ErrorKind::Shape,
                        "%{}: shape {} gives {} = {}, outside its range [{}, {}]", name,
                        formatShape(v.shape), sym, n / mul, s->lo, s->hi);
        (*syms)[sym] = n / mul;
        from[sym] = "%" + name;
      }
    }
  }
  for (const SymbolDecl &s : f.symbols())
    if (!syms->count(s.name))
      return apiErr(ErrorKind::Bind,
                    "symbol {} of @{} is not given and no input's shape determines it "
                    "(declared in [{}, {}])",
                    s.name, f.getName(), s.lo, s.hi);
  return syms;
}

llvm::Expected<SymbolValues>
jit::Executable::inferSymbols(const std::vector<std::pair<std::string, TensorView>> &inputs,
                              const SymbolValues &given) const {
  const Function &f = impl->exe->function();
  llvm::StringMap<std::string> from;
  auto syms = inferBindings(f, inputs, given, from);
  if (!syms)
    return syms.takeError();
  SymbolValues out;
  for (const SymbolDecl &s : f.symbols())
    out.push_back({s.name, syms->lookup(s.name)});
  return out;
}

//===----------------------------------------------------------------------===//
// Binding
//===----------------------------------------------------------------------===//

/// The architecture a function was imported for (moe-import's
/// `architecture` function attribute), or "" when it does not say.
static std::string architectureOf(const Function &f) {
  const Attribute *a = f.attrs().get("architecture");
  return a && a->kind() == Attribute::Kind::String ? a->getString() : std::string();
}

llvm::Error jit::Executable::bindGgufParams(llvm::StringRef path) {
  auto opened = gguf::GgufFile::open(path);
  if (!opened)
    return withKind(ErrorKind::IO, opened.takeError());
  std::shared_ptr<const gguf::GgufFile> file(std::move(*opened));
  const Function &f = impl->exe->function();
  if (std::string want = architectureOf(f); !want.empty()) {
    auto got = file->getString("general.architecture");
    if (!got)
      return apiErr(ErrorKind::Bind, "{}: @{} was imported for architecture '{}'; the file "
                    "does not say its architecture ({})", path.str(), f.getName(), want,
                    llvm::toString(got.takeError()));
    if (*got != want)
      return apiErr(ErrorKind::Bind, "{}: general.architecture is '{}', but @{} was imported "
                    "for '{}'; nothing bound", path.str(), got->str(), f.getName(), want);
  }
  // A derived param (merge-up-gate's gate_up) is built once from its
  // sources in the file, as moe-run does; the Binder keeps it.
  auto binder = std::make_unique<Binder>(f, ggufSource(file, randomSource(0)), SymbolBindings(),
                                         ggufInPlaceSource(file));
  std::vector<std::pair<unsigned, const void *>> got; // all or nothing
  auto e = forEachUnboundParam(*this, [&](const Value &a, llvm::ArrayRef<int64_t> shape) -> llvm::Error {
    auto d = getDerivation(a);
    if (!d)
      return d.takeError();
    if (*d) {
      auto built = binder->derivedInPlace(a);
      if (!built)
        return built.takeError();
      if (*built) {
        got.push_back({a.getArgIndex(), *built});
        return llvm::Error::success();
      }
      auto w = binder->whole(a.getName()); // a source of another type
      if (!w)
        return w.takeError();
      got.push_back({a.getArgIndex(), storedData(**w, impl->storage)});
      return llvm::Error::success();
    }
    auto data = ggufParamData(*file, a, a.getType().elem, shape);
    if (!data)
      return data.takeError();
    got.push_back({a.getArgIndex(), data->data()});
    return llvm::Error::success();
  });
  if (e)
    return withKind(ErrorKind::Bind, std::move(e));
  for (auto [k, p] : got)
    impl->bound[k] = p;
  impl->paramsVersion = moe::Executable::newParamsVersion();
  impl->files.push_back(std::move(file));
  impl->binders.push_back(std::move(binder));
  return llvm::Error::success();
}

llvm::Error jit::Executable::bindRandomParams(uint64_t seed) {
  return withKind(ErrorKind::Bind, forEachUnboundParam(*this, [&](const Value &a, llvm::ArrayRef<int64_t> shape) -> llvm::Error {
    auto t = randomTensor(seed, a.getName(), a.getType().elem, shape, true);
    if (!t)
      return t.takeError();
    impl->paramsVersion = moe::Executable::newParamsVersion();
    impl->bound[a.getArgIndex()] = storedData(impl->owned.emplace_back(std::move(*t)),
                                               impl->storage);
    return llvm::Error::success();
  }));
}

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

/// The arguments of a run (params bound, inputs checked) and its symbols.
struct PreparedRun {
  std::vector<const void *> args;
  SymbolBindings syms;
};

static llvm::Expected<PreparedRun>
prepareRun(const Function &f, const std::vector<const void *> &bound,
           const std::vector<std::pair<std::string, TensorView>> &inputs,
           const SymbolValues &symbols) {
  PreparedRun r;
  r.args = bound;
  std::vector<bool> given(f.getNumArguments(), false);
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (!a || a->isParam())
      return apiErr(ErrorKind::Bind, "@{} has no input '{}'", f.getName(), name);
    if (given[a->getArgIndex()])
      return apiErr(ErrorKind::Bind, "input '{}' given twice", name);
    given[a->getArgIndex()] = true;
  }
  for (const Value *a : f.getArguments())
    if (!a->isParam() && !given[a->getArgIndex()])
      return apiErr(ErrorKind::Bind, "input '{}' of @{} is not given", a->getName(), f.getName());
    else if (a->isParam() && !r.args[a->getArgIndex()])
      return apiErr(ErrorKind::Bind,
                    "param '{}' of @{} is not bound (bindParam, bindGgufParams or "
                    "bindRandomParams)",
                    a->getName(), f.getName());
  llvm::StringMap<std::string> from;
  auto syms = inferBindings(f, inputs, symbols, from);
  if (!syms)
    return syms.takeError();
  r.syms = std::move(*syms);
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (auto e = checkView(*a, v, &r.syms, &from))
      return e;
    r.args[a->getArgIndex()] = v.data;
  }
  // Params' symbolic dims are checked now that the symbols are known.
  for (const Value *a : f.getArguments())
    if (a->isParam() && !a->getType().isStatic())
      return apiErr(ErrorKind::Bind,
                    "param '{}' has symbolic dims; not supported by the library API yet",
                    a->getName());
  return r;
}

llvm::Error jit::Executable::run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                                 std::vector<HostTensor> &outputs, const SymbolValues &symbols) {
  outputs.clear(); // no stale results after a failure
  auto prepared = prepareRun(impl->exe->function(), impl->bound, inputs, symbols);
  if (!prepared)
    return prepared.takeError();
  RunOptions ro;
  ro.paramsVersion = impl->paramsVersion;
  auto out = impl->exe->runRaw(prepared->args, prepared->syms, ro);
  if (!out)
    return withKind(ErrorKind::Runtime, out.takeError());
  for (Tensor &t : *out) {
    HostTensor h;
    h.dtype = toDType(t.elem);
    h.shape = t.shape;
    h.bytes = t.storedBytes();
    outputs.push_back(std::move(h));
  }
  return llvm::Error::success();
}

llvm::Error jit::Executable::run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                                 llvm::ArrayRef<MutableTensorView> outputs,
                                 const SymbolValues &symbols) {
  const Function &f = impl->exe->function();
  auto prepared = prepareRun(f, impl->bound, inputs, symbols);
  if (!prepared)
    return prepared.takeError();
  if (outputs.size() != f.resultTypes().size())
    return apiErr(ErrorKind::Shape, "@{} has {} result{}, got {} output view{}", f.getName(),
                  f.resultTypes().size(), f.resultTypes().size() == 1 ? "" : "s",
                  outputs.size(), outputs.size() == 1 ? "" : "s");
  std::vector<void *> dst;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const MutableTensorView &o = outputs[k];
    const TensorType &t = f.resultTypes()[k];
    auto want = evaluateShape(t, prepared->syms);
    if (!want)
      return apiErr(ErrorKind::Shape, "result {}: {}", k, llvm::toString(want.takeError()));
    if (toElem(o.dtype) != t.elem || o.shape != *want)
      return apiErr(ErrorKind::Shape, "output view {}: expected {} {} ({}{}{}), got {} {}", k,
                    elemTypeName(t.elem).str(), formatShape(*want), t.str(),
                    t.isStatic() ? "" : " with ", bindingsOf(t, prepared->syms, nullptr),
                    dtypeName(o.dtype), formatShape(o.shape));
    if (!o.data && rowBytes(t.elem, [&] {
          int64_t n = 1;
          for (int64_t x : *want)
            n *= x;
          return n;
        }()) > 0)
      return apiErr(ErrorKind::Shape, "output view {}: null data", k);
    dst.push_back(o.data);
  }
  RunOptions ro;
  ro.paramsVersion = impl->paramsVersion;
  ro.results = dst;
  auto out = impl->exe->runRaw(prepared->args, prepared->syms, ro);
  if (!out)
    return withKind(ErrorKind::Runtime, out.takeError());
  return llvm::Error::success();
}

double jit::Executable::compileMs() const { return impl->exe->jitStats().compileMs; }
bool jit::Executable::fromCache() const { return impl->exe->jitStats().modulesFromCache > 0; }
std::string jit::Executable::cacheKey() const { return impl->exe->jitStats().cacheKey; }
