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
#include "runtime/InProcessRanks.h"
#include "runtime/Interpreter.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/Random.h"
#include "ir/Spmd.h"

#include "fmt/format.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <mutex>
#include <thread>

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

/// A jit::Communicator as the runtime's Communicator.
namespace {
class CommAdapter : public moe::Communicator {
public:
  explicit CommAdapter(jit::Communicator &c) : c(c) {}
  int rank() const override { return c.rank(); }
  int size() const override { return c.size(); }
  llvm::Error allReduceSum(float *data, size_t n) override { return c.allReduceSum(data, n); }
  llvm::Error allReduceSum(uint16_t *data, size_t n, ElemType elem) override {
    return c.allReduceSum(data, n, toDType(elem));
  }

private:
  jit::Communicator &c;
};
} // namespace

struct jit::Executable::Impl {
  std::unique_ptr<moe::Executable> exe;
  /// How each param the caller binds is bound, per argument (None for
  /// inputs, derived params and params not bound yet).
  struct Source {
    enum Kind { None, Memory, Random } kind = None;
    const void *data = nullptr; ///< Memory: the whole value, stored layout
    uint64_t seed = 0;          ///< Random
  };
  std::vector<Source> sources;
  /// The function's rank count; the ranks this process runs (all of them,
  /// or Options::comm's one).
  int ranks = 1;
  std::vector<int> myRanks{0};
  /// What each of myRanks is given: ptrs[i][k] is argument k of rank
  /// myRanks[i] (params only; null: not bound), kept alive by keep[i][k]
  /// (a shard, a derived value, a generated param, and the Binder that
  /// built them). Built when a param is bound, never per run.
  std::vector<std::vector<const void *>> ptrs;
  std::vector<std::vector<std::shared_ptr<void>>> keep;
  std::vector<std::shared_ptr<const gguf::GgufFile>> files; ///< mapped models
  /// Options::comm as the runtime sees it (null: in-process ranks).
  std::unique_ptr<CommAdapter> comm;
  /// Ranks 1.. of an in-process split run on these (rank 0 on the
  /// Executable's own pool). Runs of a split function are queued, one at
  /// a time (they share these pools, or the communicator's collectives).
  std::vector<std::unique_ptr<WorkerPool>> rankPools;
  std::mutex ranksMutex;
  /// Bumped by every binding: weights repacked for the kernels are reused
  /// between two bindings (moe::RunOptions::paramsVersion).
  uint64_t paramsVersion = moe::Executable::newParamsVersion();

  const Function &function() const { return exe->function(); }
  /// Whether `a` can be given to the kernels: bound, or derived from
  /// params that can.
  bool ready(const Value &a) const;
  /// The first param `a` needs that is not bound: itself, or a source.
  const Value *firstUnbound(const Value &a) const;
  bool isBound(const Value &a) const { return sources[a.getArgIndex()].kind != Source::None; }
  /// The arguments of a run: for each rank this process runs, its params
  /// and the inputs (the same on every rank), with its symbols (the
  /// caller's, those inferred from the inputs, and the rank's).
  struct PreparedRun {
    std::vector<std::vector<const void *>> args;
    std::vector<SymbolBindings> syms;
  };
  llvm::Expected<PreparedRun>
  prepareRun(const std::vector<std::pair<std::string, TensorView>> &inputs,
             const SymbolValues &symbols) const;
  /// Runs every rank this process runs; rank 0's results (or this
  /// process's rank's, with a communicator). `ro`: rank 0's options (its
  /// output views); the other ranks' results are their own.
  llvm::Expected<std::vector<Tensor>> runRanks(const PreparedRun &p, RunOptions ro);
  /// Rebuilds what the ranks are given for the params named in `changed`
  /// and every param derived from them.
  llvm::Error prepare(const std::vector<const Value *> &changed);
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
  // The rank count: the function's, which Options::ranks and the
  // communicator's size must equal (as moe-run's --ranks and --mpi).
  int split = (int)numRanks(*f);
  auto mismatch = [&](std::string what, int n) {
    if (split == 1)
      return apiErr(ErrorKind::Compile,
                    "{}: @{} is not split over ranks (run tp-split{{ranks={}}} first)", what,
                    f->getName(), n);
    return apiErr(ErrorKind::Compile, "{}: @{} was split for {} ranks", what, f->getName(),
                  split);
  };
  if (opts.ranks != 0 && (int)opts.ranks != split)
    return mismatch(fmt::format("Options::ranks = {}", opts.ranks), (int)opts.ranks);
  if (opts.comm && opts.comm->size() != split)
    return mismatch(fmt::format("a communicator of {} rank{}", opts.comm->size(),
                                opts.comm->size() == 1 ? "" : "s"),
                    opts.comm->size());
  unsigned threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  unsigned perRank = std::max(1u, threads / (unsigned)(opts.comm ? 1 : split));
  ExecOptions eo;
  eo.threads = split > 1 && !opts.comm ? perRank : opts.threads;
  eo.jit.useCache = opts.useCache;
  eo.jit.cacheDir = opts.cacheDir;
  eo.jit.warn = [](const std::string &w) { diagnose(DiagnosticSeverity::Warning, w); };
  auto exe = moe::Executable::compile(*f, eo);
  if (!exe)
    return withKind(ErrorKind::Compile, exe.takeError());
  auto impl = std::make_unique<Executable::Impl>();
  impl->sources.resize(f->getNumArguments());
  impl->ranks = split;
  if (opts.comm) {
    impl->myRanks = {opts.comm->rank()};
    impl->comm = std::make_unique<CommAdapter>(*opts.comm);
  } else {
    impl->myRanks.clear();
    for (int r = 0; r < split; ++r)
      impl->myRanks.push_back(r);
    for (int r = 1; r < split; ++r)
      impl->rankPools.push_back(std::make_unique<WorkerPool>(perRank));
  }
  impl->ptrs.assign(impl->myRanks.size(), std::vector<const void *>(f->getNumArguments()));
  impl->keep.assign(impl->myRanks.size(),
                    std::vector<std::shared_ptr<void>>(f->getNumArguments()));
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
static std::string bindingsOf(const TensorType &t, const SymbolBindings &syms,
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
static llvm::Error checkView(const Value &a, const TensorView &v, const SymbolBindings *syms,
                             const llvm::StringMap<std::string> *from = nullptr,
                             const TensorType *type = nullptr) {
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

//===----------------------------------------------------------------------===//
// Params: sources, derived params, shards
//===----------------------------------------------------------------------===//

bool jit::Executable::Impl::ready(const Value &a) const {
  auto d = getDerivation(a);
  if (!d) {
    llvm::consumeError(d.takeError());
    return false;
  }
  if (!*d)
    return sources[a.getArgIndex()].kind != Source::None;
  for (auto &name : (*d)->from) // no cycles: the verifier checked them
    if (const Value *s = function().lookupArgument(name); !s || !ready(*s))
      return false;
  return true;
}

llvm::Error jit::Executable::Impl::prepare(const std::vector<const Value *> &changed) {
  const Function &f = function();
  // The changed params and every param derived from them, transitively.
  std::vector<bool> affected(f.getNumArguments(), false);
  for (const Value *a : changed)
    affected[a->getArgIndex()] = true;
  for (bool grew = true; grew;) {
    grew = false;
    for (const Value *a : f.getArguments()) {
      auto d = getDerivation(*a);
      if (!d)
        return d.takeError();
      if (affected[a->getArgIndex()] || !*d)
        continue;
      for (auto &name : (*d)->from)
        if (const Value *s = f.lookupArgument(name); s && affected[s->getArgIndex()]) {
          affected[a->getArgIndex()] = grew = true;
          break;
        }
    }
  }
  // moe-run's Binder over what is bound now: caller and file memory in
  // place, the seeded generator for the rest; it derives and shards exactly
  // as moe-run --weights / --seed does, and keeps what it built.
  std::vector<Source> snapshot = sources;
  ArgSource source = [snapshot](const Value &a, ElemType elem,
                                llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
    const Source &s = snapshot[a.getArgIndex()];
    if (s.kind == Source::Random)
      return randomSource(s.seed)(a, elem, shape);
    if (s.kind == Source::Memory)
      return Tensor::fromStored(elem, std::vector<int64_t>(shape.begin(), shape.end()), s.data);
    return apiErr(ErrorKind::Bind, "param '{}' is not bound", a.getName());
  };
  InPlaceSource inPlace = [snapshot](const Value &a, ElemType,
                                     llvm::ArrayRef<int64_t>) -> llvm::Expected<const void *> {
    const Source &s = snapshot[a.getArgIndex()];
    return s.kind == Source::Memory ? s.data : nullptr;
  };
  auto binder = std::make_shared<Binder>(f, source, SymbolBindings(), inPlace);
  struct Built { // one argument of one rank, and what it points into
    std::shared_ptr<Binder> binder; ///< whole values (null for a shard)
    StoredArgs args;                ///< a shard's own copy
  };
  for (const Value *a : f.getArguments()) {
    unsigned k = a->getArgIndex();
    if (!affected[k])
      continue;
    for (size_t i = 0; i < myRanks.size(); ++i) {
      ptrs[i][k] = nullptr;
      keep[i][k].reset();
    }
    if (!ready(*a))
      continue;
    for (size_t i = 0; i < myRanks.size(); ++i) {
      auto stored = binder->storedArgForRank(*a, myRanks[i]);
      if (!stored)
        return stored.takeError();
      // A shard owns its rows; the whole value it was cut from (a derived
      // gate_up, a generated param) goes with the Binder once unused.
      auto built = std::make_shared<Built>(
          Built{getShardSpec(*a) ? nullptr : binder, std::move(*stored)});
      ptrs[i][k] = built->args.ptrs.at(0);
      keep[i][k] = std::move(built);
    }
  }
  paramsVersion = moe::Executable::newParamsVersion();
  return llvm::Error::success();
}

/// A param the caller may bind: a param, not derived; its whole type.
static llvm::Expected<TensorType> bindableParam(const Function &f, llvm::StringRef name) {
  const Value *a = f.lookupArgument(name);
  if (!a || !a->isParam())
    return apiErr(ErrorKind::Bind, "@{} has no param '{}'", f.getName(), name.str());
  auto d = getDerivation(*a);
  if (!d)
    return d.takeError();
  if (*d) {
    std::string from;
    for (auto &s : (*d)->from)
      from += (from.empty() ? "'" : ", '") + s + "'";
    return apiErr(ErrorKind::Bind, "param '{}' is derived from {}: bind {} instead",
                  a->getName(), from, (*d)->from.size() == 1 ? "it" : "those");
  }
  return fullParamType(f, *a);
}

llvm::Error jit::Executable::bindParam(llvm::StringRef name, const TensorView &v) {
  const Function &f = impl->exe->function();
  auto type = bindableParam(f, name);
  if (!type)
    return withKind(ErrorKind::Bind, type.takeError());
  const Value *a = f.lookupArgument(name);
  if (auto e = checkView(*a, v, nullptr, nullptr, &*type))
    return e;
  if (!type->isStatic())
    return apiErr(ErrorKind::Bind,
                  "param '{}' has symbolic dims ({}); the library binds params before symbols",
                  a->getName(), type->str());
  impl->sources[a->getArgIndex()] = {Impl::Source::Memory, v.data, 0};
  return withKind(ErrorKind::Bind, impl->prepare({a}));
}

/// Calls `fn` with each param not bound yet and its concrete whole shape;
/// params with symbolic dims are an error (the library binds params before
/// symbols).
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
  const Function &f = impl.function();
  for (const Value *a : f.getArguments()) {
    if (!a->isParam() || a->argAttrs().get("derive") || impl.isBound(*a))
      continue;
    TensorType whole = fullParamType(f, *a);
    auto shape = whole.evaluate({});
    if (!shape)
      return apiErr(ErrorKind::Bind, "param %{} has symbolic dims ({}); bind it with bindParam",
                    a->getName(), whole.str());
    if (auto e = fn(*a, *shape))
      return e;
  }
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Queries and symbols
//===----------------------------------------------------------------------===//

/// Whether symbol `name` of `f` is rank-dependent (tp-split's F): bound
/// per rank by the library, never given by the caller.
static bool isRankSymbol(const Function &f, llvm::StringRef name) {
  return rankBindings(f, 0).count(name) != 0;
}

/// The given symbol values as bindings: each declared, given once, and in
/// its range.
static llvm::Expected<SymbolBindings> bindingsFrom(const Function &f, const SymbolValues &given) {
  SymbolBindings syms;
  for (auto &[n, v] : given) {
    const SymbolDecl *s = f.lookupSymbol(n);
    if (!s)
      return apiErr(ErrorKind::Bind, "symbol {} is given but @{} declares no such symbol", n,
                    f.getName());
    if (isRankSymbol(f, n))
      return apiErr(ErrorKind::Bind,
                    "symbol {} of @{} is rank-dependent (set per rank by tp-split); do not "
                    "give it",
                    n, f.getName());
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
    if (!isRankSymbol(impl->exe->function(), s.name)) // the library binds those
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
  // A param's is its whole type, as the caller binds it.
  return describe(f, a->isParam() ? fullParamType(f, *a) : a->getType(), symbols,
                  "%" + name.str());
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
        if (it != syms->end()) { // the shape these bindings expect
          if (llvm::Error e = checkView(*a, v, &*syms, &from))
            return e;
        }
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
    if (!syms->count(s.name) && !isRankSymbol(f, s.name))
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
    if (!isRankSymbol(f, s.name))
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
  // All or nothing: every unbound param's tensor is found and checked first.
  std::vector<std::pair<const Value *, const void *>> got;
  auto e = forEachUnboundParam(*this, [&](const Value &a, llvm::ArrayRef<int64_t> shape) -> llvm::Error {
    auto data = ggufParamData(*file, a, a.getType().elem, shape);
    if (!data)
      return data.takeError();
    got.push_back({&a, data->data()});
    return llvm::Error::success();
  });
  if (e)
    return withKind(ErrorKind::Bind, std::move(e));
  std::vector<const Value *> changed;
  for (auto [a, p] : got) {
    impl->sources[a->getArgIndex()] = {Impl::Source::Memory, p, 0};
    changed.push_back(a);
  }
  impl->files.push_back(std::move(file));
  return withKind(ErrorKind::Bind, impl->prepare(changed));
}

llvm::Error jit::Executable::bindRandomParams(uint64_t seed) {
  std::vector<const Value *> changed;
  auto e = forEachUnboundParam(*this, [&](const Value &a, llvm::ArrayRef<int64_t>) {
    changed.push_back(&a);
    return llvm::Error::success();
  });
  if (e)
    return withKind(ErrorKind::Bind, std::move(e));
  for (const Value *a : changed)
    impl->sources[a->getArgIndex()] = {Impl::Source::Random, nullptr, seed};
  return withKind(ErrorKind::Bind, impl->prepare(changed));
}

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

const Value *jit::Executable::Impl::firstUnbound(const Value &a) const {
  const Impl &impl = *this;
  if (impl.ready(a))
    return nullptr;
  auto d = getDerivation(a);
  if (!d) {
    llvm::consumeError(d.takeError());
    return &a;
  }
  if (!*d)
    return &a;
  for (auto &name : (*d)->from)
    if (const Value *s = impl.function().lookupArgument(name))
      if (const Value *u = impl.firstUnbound(*s))
        return u;
  return &a;
}

llvm::Expected<jit::Executable::Impl::PreparedRun>
jit::Executable::Impl::prepareRun(const std::vector<std::pair<std::string, TensorView>> &inputs,
                                  const SymbolValues &symbols) const {
  const Impl &impl = *this;
  const Function &f = impl.function();
  std::vector<bool> given(f.getNumArguments(), false);
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (!a || a->isParam())
      return apiErr(ErrorKind::Bind, "@{} has no input '{}'", f.getName(), name);
    if (given[a->getArgIndex()])
      return apiErr(ErrorKind::Bind, "input '{}' given twice", name);
    given[a->getArgIndex()] = true;
  }
  for (const Value *a : f.getArguments()) {
    if (!a->isParam() && !given[a->getArgIndex()])
      return apiErr(ErrorKind::Bind, "input '{}' of @{} is not given", a->getName(), f.getName());
    if (!a->isParam() || impl.ptrs[0][a->getArgIndex()])
      continue;
    // Name the source the caller must bind, and a derived param it feeds.
    const Value *u = impl.firstUnbound(*a), *derived = u == a ? nullptr : a;
    for (const Value *d : f.getArguments())
      if (!derived && d != u && d->argAttrs().get("derive") && impl.firstUnbound(*d) == u)
        derived = d;
    return apiErr(ErrorKind::Bind,
                  "param '{}' of @{} is not bound (bindParam, bindGgufParams or "
                  "bindRandomParams){}",
                  u->getName(), f.getName(),
                  derived ? fmt::format("; derived param '{}' is built from it", derived->getName())
                          : std::string());
  }
  llvm::StringMap<std::string> from;
  auto syms = inferBindings(f, inputs, symbols, from);
  if (!syms)
    return syms.takeError();
  PreparedRun r;
  for (size_t i = 0; i < impl.myRanks.size(); ++i) {
    SymbolBindings rs = *syms;
    for (auto &e : rankBindings(f, impl.myRanks[i]))
      rs[e.getKey()] = e.getValue();
    if (auto e = checkSymbols(f, rs))
      return withKind(ErrorKind::Shape, std::move(e));
    r.args.push_back(impl.ptrs[i]);
    r.syms.push_back(std::move(rs));
  }
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (auto e = checkView(*a, v, &*syms, &from))
      return e;
    for (auto &args : r.args)
      args[a->getArgIndex()] = v.data;
  }
  return r;
}

llvm::Expected<std::vector<Tensor>> jit::Executable::Impl::runRanks(const PreparedRun &p,
                                                                    RunOptions ro) {
  Impl &impl = *this;
  ro.paramsVersion = impl.paramsVersion;
  size_t n = impl.myRanks.size();
  if (n == 1) { // one rank, or this process's rank of a communicator's
    std::unique_lock<std::mutex> lock(impl.ranksMutex, std::defer_lock);
    if (impl.comm && impl.comm->size() > 1) {
      ro.comm = impl.comm.get();
      lock.lock(); // the ranks' collectives must not interleave
    }
    return withKind(ErrorKind::Runtime, impl.exe->runRaw(p.args[0], p.syms[0], ro));
  }
  // In-process ranks, one group at a time (they share rankPools).
  std::lock_guard<std::mutex> lock(impl.ranksMutex);
  auto all = gatherRanks((int)n, [&](int r, moe::Communicator *comm) {
    RunOptions o = r == 0 ? ro : RunOptions();
    o.paramsVersion = impl.paramsVersion;
    o.comm = comm;
    o.pool = r == 0 ? nullptr : impl.rankPools[r - 1].get();
    return impl.exe->runRaw(p.args[r], p.syms[r], o);
  });
  if (!all)
    return withKind(ErrorKind::Runtime, all.takeError());
  return std::move((*all)[0]);
}

llvm::Error jit::Executable::run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                                 std::vector<HostTensor> &outputs, const SymbolValues &symbols) {
  outputs.clear(); // no stale results after a failure
  auto prepared = impl->prepareRun(inputs, symbols);
  if (!prepared)
    return prepared.takeError();
  auto out = impl->runRanks(*prepared, RunOptions());
  if (!out)
    return out.takeError();
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
  auto prepared = impl->prepareRun(inputs, symbols);
  if (!prepared)
    return prepared.takeError();
  const SymbolBindings &syms0 = prepared->syms[0];
  if (outputs.size() != f.resultTypes().size())
    return apiErr(ErrorKind::Shape, "@{} has {} result{}, got {} output view{}", f.getName(),
                  f.resultTypes().size(), f.resultTypes().size() == 1 ? "" : "s",
                  outputs.size(), outputs.size() == 1 ? "" : "s");
  std::vector<void *> dst;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const MutableTensorView &o = outputs[k];
    const TensorType &t = f.resultTypes()[k];
    auto want = evaluateShape(t, syms0);
    if (!want)
      return apiErr(ErrorKind::Shape, "result {}: {}", k, llvm::toString(want.takeError()));
    if (toElem(o.dtype) != t.elem || o.shape != *want)
      return apiErr(ErrorKind::Shape, "output view {}: expected {} {} ({}{}{}), got {} {}", k,
                    elemTypeName(t.elem).str(), formatShape(*want), t.str(),
                    t.isStatic() ? "" : " with ", bindingsOf(t, syms0, nullptr),
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
  ro.results = dst;
  auto out = impl->runRanks(*prepared, ro);
  if (!out)
    return out.takeError();
  return llvm::Error::success();
}


//===----------------------------------------------------------------------===//
// Communicators
//===----------------------------------------------------------------------===//

jit::Communicator::~Communicator() = default;

llvm::Error jit::Communicator::allReduceSum(uint16_t *data, size_t n, DType elem) {
  if (elem != DType::F16 && elem != DType::BF16)
    return apiErr(ErrorKind::Runtime, "allReduceSum: 16-bit sums are f16 or bf16, not {}",
                  dtypeName(elem));
  ElemType e = toElem(elem);
  std::vector<float> wide(n);
  for (size_t i = 0; i < n; ++i)
    wide[i] = widen16(e, data[i]);
  if (auto x = allReduceSum(wide.data(), n))
    return x;
  for (size_t i = 0; i < n; ++i)
    data[i] = narrow16(e, wide[i]);
  return llvm::Error::success();
}

struct jit::MpiWorld::State {
  std::unique_ptr<MpiSession> session;
  std::unique_ptr<MpiCommunicator> comm;
};

jit::MpiWorld::MpiWorld(std::unique_ptr<State> s) : s(std::move(s)) {}
jit::MpiWorld::~MpiWorld() {
  s->comm.reset();
  s->session.reset(); // MPI_Finalize
}

llvm::Expected<std::unique_ptr<jit::MpiWorld>> jit::MpiWorld::init(int *argc, char ***argv) {
  if (!mpiSupported())
    return apiErr(ErrorKind::Runtime,
                  "this libmoe was built without MPI (no MPI was found when it was configured)");
  auto session = MpiSession::init(argc, argv);
  if (!session)
    return withKind(ErrorKind::Runtime, session.takeError());
  auto st = std::make_unique<State>();
  st->comm = std::make_unique<MpiCommunicator>(**session);
  st->session = std::move(*session);
  return std::unique_ptr<MpiWorld>(new MpiWorld(std::move(st)));
}

int jit::MpiWorld::rank() const { return s->session->rank(); }
int jit::MpiWorld::size() const { return s->session->size(); }
llvm::Error jit::MpiWorld::allReduceSum(float *data, size_t n) {
  return s->comm->allReduceSum(data, n);
}
llvm::Error jit::MpiWorld::allReduceSum(uint16_t *data, size_t n, DType elem) {
  if (elem != DType::F16 && elem != DType::BF16)
    return apiErr(ErrorKind::Runtime, "allReduceSum: 16-bit sums are f16 or bf16, not {}",
                  dtypeName(elem));
  return s->comm->allReduceSum(data, n, toElem(elem));
}
void jit::MpiWorld::abort(int code) { s->session->abort(code); }

double jit::Executable::compileMs() const { return impl->exe->jitStats().compileMs; }
bool jit::Executable::fromCache() const { return impl->exe->jitStats().modulesFromCache > 0; }
std::string jit::Executable::cacheKey() const { return impl->exe->jitStats().cacheKey; }
