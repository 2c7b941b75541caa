//===- Moe.cpp - The library API (include/moe/Moe.h): errors, modules, compile -===//
//
// Errors and diagnostics, modules, compile and the Executable's names (the
// rest of the API: Bind.cpp, Run.cpp, Mpi.cpp; shared: ApiInternal.h).
// A thin layer over the internal ones: parsing and verification (ir/),
// pipelines (passes/), compilation and runs (runtime/Executable). Params
// bound from caller memory are passed to the kernels as they are; inputs
// too. Only f16/bf16 results are decoded when the caller asks for floats.
// Every error leaving the API is an ApiError with its kind: the internal
// layers' string errors are wrapped (withKind) at the entry point that
// knows what kind of failure they are.
//
//===----------------------------------------------------------------------===//
#include "api/ApiInternal.h"

using namespace moe;
using namespace moe::api;

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


static std::mutex diagMutex;
static DiagnosticHandler diagHandler;

DiagnosticHandler moe::setDiagnosticHandler(DiagnosticHandler h) {
  std::lock_guard<std::mutex> lock(diagMutex);
  std::swap(h, diagHandler);
  return h;
}

/// Sends a warning or remark to the caller's handler, or to standard error.
void moe::api::diagnose(DiagnosticSeverity s, const std::string &message) {
  std::lock_guard<std::mutex> lock(diagMutex);
  if (diagHandler) {
    diagHandler(s, message);
    return;
  }
  llvm::errs() << (s == DiagnosticSeverity::Warning ? "moe: warning: " : "moe: remark: ")
               << message << "\n";
}

ElemType moe::api::toElem(DType t) {
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

DType moe::api::toDType(ElemType t) {
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


jit::Executable::Executable(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
jit::Executable::Executable(Executable &&) noexcept = default;
jit::Executable &jit::Executable::operator=(Executable &&) noexcept = default;
jit::Executable::~Executable() = default;

namespace {
/// How a function runs under `opts`: its rank count (checked against
/// Options::ranks and the communicator) and the threads of its pool.
struct RankPlan {
  int split = 1;
  unsigned perRank = 1, poolThreads = 0;
};
} // namespace

static llvm::Expected<RankPlan> rankPlan(const Function &f, const jit::Options &opts) {
  RankPlan r;
  r.split = (int)numRanks(f);
  auto mismatch = [&](std::string what, int n) {
    if (r.split == 1)
      return apiErr(ErrorKind::Compile,
                    "{}: @{} is not split over ranks (run tp-split{{ranks={}}} first)", what,
                    f.getName(), n);
    return apiErr(ErrorKind::Compile, "{}: @{} was split for {} ranks", what, f.getName(),
                  r.split);
  };
  if (opts.ranks != 0 && (int)opts.ranks != r.split)
    return mismatch(fmt::format("Options::ranks = {}", opts.ranks), (int)opts.ranks);
  if (opts.comm && opts.comm->size() != r.split)
    return mismatch(fmt::format("a communicator of {} rank{}", opts.comm->size(),
                                opts.comm->size() == 1 ? "" : "s"),
                    opts.comm->size());
  unsigned threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  r.perRank = std::max(1u, threads / (unsigned)(opts.comm ? 1 : r.split));
  r.poolThreads = r.split > 1 && !opts.comm ? r.perRank : opts.threads;
  return r;
}

static ExecOptions execOptions(const jit::Options &opts) {
  ExecOptions eo;
  eo.threads = opts.threads;
  eo.jit.useCache = opts.useCache;
  eo.jit.cacheDir = opts.cacheDir;
  eo.jit.warn = [](const std::string &w) { diagnose(DiagnosticSeverity::Warning, w); };
  return eo;
}

jit::Executable jit::ImplAccess::wrap(const Function &f, const Options &opts, int split,
                                      unsigned perRank, std::unique_ptr<moe::Executable> exe) {
  auto impl = std::make_unique<Executable::Impl>();
  impl->sources.resize(f.getNumArguments());
  impl->ranks = split;
  if (opts.comm) {
    impl->myRanks = {opts.comm->rank()};
    impl->comm = std::make_unique<CommAdapter>(*opts.comm);
  } else {
    impl->myRanks.clear();
    for (int k = 0; k < split; ++k)
      impl->myRanks.push_back(k);
    for (int k = 1; k < split; ++k)
      impl->rankPools.push_back(std::make_unique<WorkerPool>(perRank));
  }
  impl->ptrs.assign(impl->myRanks.size(), std::vector<const void *>(f.getNumArguments()));
  impl->keep.assign(impl->myRanks.size(),
                    std::vector<std::shared_ptr<void>>(f.getNumArguments()));
  impl->exe = std::move(exe);
  return Executable(std::move(impl));
}

llvm::Expected<jit::Executable> jit::compile(const ModuleHandle &m, llvm::StringRef function,
                                             const Options &opts) {
  const Function *f = m.get().lookup(function);
  if (!f)
    return apiErr(ErrorKind::Compile, "no function @{} in the module", function.str());
  auto r = rankPlan(*f, opts);
  if (!r)
    return r.takeError();
  ExecOptions eo = execOptions(opts);
  eo.threads = r->poolThreads;
  auto exe = moe::Executable::compile(*f, eo);
  if (!exe)
    return withKind(ErrorKind::Compile, exe.takeError());
  return ImplAccess::wrap(*f, opts, r->split, r->perRank, std::move(*exe));
}

llvm::Expected<std::vector<jit::Executable>> jit::compileModule(const ModuleHandle &m,
                                                                const Options &opts) {
  std::vector<const Function *> fs;
  std::vector<RankPlan> plans;
  std::vector<unsigned> threads;
  for (auto &f : m.get().functions) {
    auto r = rankPlan(*f, opts);
    if (!r)
      return r.takeError();
    fs.push_back(f.get());
    plans.push_back(*r);
    threads.push_back(r->poolThreads);
  }
  if (fs.empty())
    return apiErr(ErrorKind::Compile, "the module has no function");
  auto exes = moe::Executable::compileAll(fs, execOptions(opts), threads);
  if (!exes)
    return withKind(ErrorKind::Compile, exes.takeError());
  std::vector<Executable> out;
  for (size_t i = 0; i < fs.size(); ++i)
    out.push_back(ImplAccess::wrap(*fs[i], opts, plans[i].split, plans[i].perRank,
                                   std::move((*exes)[i])));
  return out;
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
    if (a->isParam() && !a->argAttrs().get("derive"))
      n.push_back(a->getName());
  return n;
}

std::vector<jit::DerivedParam> jit::Executable::derivedParams() const {
  std::vector<DerivedParam> out;
  for (const Value *a : impl->exe->function().getArguments()) {
    auto d = getDerivation(*a);
    if (!d) { // the verifier has checked every derivation
      llvm::consumeError(d.takeError());
      continue;
    }
    if (a->isParam() && *d)
      out.push_back({a->getName(), (*d)->from});
  }
  return out;
}

unsigned jit::Executable::ranks() const { return (unsigned)impl->ranks; }

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
std::string moe::api::bindingsOf(const TensorType &t, const SymbolBindings &syms,
                                 const llvm::StringMap<std::string> *from) {
  std::vector<std::string> names;
  for (const DimExpr &d : t.dims)
    d.collectSymbols(names);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<std::string> parts;
  for (auto &n : names) {
    auto it = syms.find(n);
    if (it == syms.end())
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
llvm::Error moe::api::checkView(const Value &a, const TensorView &v, const SymbolBindings *syms,
                                const llvm::StringMap<std::string> *from,
                                const TensorType *type) {
  const TensorType &t = type ? *type : a.getType();
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

double jit::Executable::compileMs() const { return impl->exe->jitStats().compileMs; }
bool jit::Executable::fromCache() const { return impl->exe->jitStats().modulesFromCache > 0; }
unsigned jit::Executable::kernelsShared() const { return impl->exe->kernelsShared(); }
std::string jit::Executable::cacheKey() const { return impl->exe->jitStats().cacheKey; }
