//===- Moe.cpp - The library API (include/moe/Moe.h) ----------------------===//
//
// A thin layer over the internal ones: parsing and verification (ir/),
// pipelines (passes/), compilation and runs (runtime/Executable). Params
// bound from caller memory are passed to the kernels as they are; inputs
// too. Only f16/bf16 results are decoded when the caller asks for floats.
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
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

using namespace moe;

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
  if (!m || !verifyModule(*m, diag))
    return err("{}", messages.empty() ? std::string("invalid module") : messages);
  m->clearLocations(); // they point into `sm`, which dies here
  return ModuleHandle(std::move(m));
}

llvm::Expected<ModuleHandle> moe::parseFile(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (!buf)
    return err("cannot read '{}': {}", path.str(), buf.getError().message());
  return parse((*buf)->getBuffer(), path);
}

llvm::Error moe::runPipeline(ModuleHandle &m, llvm::StringRef pipeline) {
  PassManager pm;
  if (auto e = pm.addPipeline(pipeline))
    return e;
  std::string messages;
  DiagEngine diag;
  collectInto(diag, nullptr, messages);
  if (auto e = pm.run(m.get(), diag))
    return err("{}{}", messages, llvm::toString(std::move(e)));
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
    return err("no function @{} in the module", function.str());
  ExecOptions eo;
  eo.threads = opts.threads;
  eo.jit.useCache = opts.useCache;
  eo.jit.cacheDir = opts.cacheDir;
  auto exe = moe::Executable::compile(*f, eo);
  if (!exe)
    return exe.takeError();
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

/// Checks a view against an argument's type: element type, rank, and every
/// dim that is static (all of them when `syms` binds the symbols).
static llvm::Error checkView(const Value &a, const TensorView &v, const SymbolBindings *syms) {
  const TensorType &t = a.getType();
  if (toElem(v.dtype) != t.elem)
    return err("%{}: expected {} ({}), got {}", a.getName(), elemTypeName(t.elem).str(),
               t.str(), dtypeName(v.dtype));
  if ((int64_t)v.shape.size() != t.rank())
    return err("%{}: expected rank {} ({}), got shape {}", a.getName(), t.rank(), t.str(),
               formatShape(v.shape));
  for (size_t d = 0; d < v.shape.size(); ++d) {
    std::optional<int64_t> want =
        syms ? t.dims[d].evaluate(*syms) : t.dims[d].getConstant();
    if (want && *want != v.shape[d])
      return err("%{}: expected shape {} ({}), got {}", a.getName(), t.shapeStr(), t.str(),
                 formatShape(v.shape));
  }
  if (!v.data && !v.shape.empty()) {
    int64_t n = 1;
    for (int64_t x : v.shape)
      n *= x;
    if (n > 0)
      return err("%{}: null data", a.getName());
  }
  if (auto e = checkShape(t.elem, v.shape))
    return err("%{}: {}", a.getName(), llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error jit::Executable::bindParam(llvm::StringRef name, const TensorView &v) {
  const Function &f = impl->exe->function();
  const Value *a = f.lookupArgument(name);
  if (!a || !a->isParam())
    return err("@{} has no param '{}'", f.getName(), name.str());
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
      return err("param %{} has symbolic dims ({}); bind it with bindParam", a->getName(),
                 a->getType().str());
    if (auto e = fn(*a, *shape))
      return e;
  }
  return llvm::Error::success();
}

llvm::Expected<std::vector<int64_t>>
jit::Executable::argumentShape(llvm::StringRef name,
                               const std::vector<std::pair<std::string, int64_t>> &symbols) const {
  const Function &f = impl->exe->function();
  const Value *a = f.lookupArgument(name);
  if (!a)
    return err("@{} has no argument '{}'", f.getName(), name.str());
  SymbolBindings syms;
  for (auto &[n, v] : symbols)
    syms[n] = v;
  return evaluateShape(a->getType(), syms);
}

llvm::Error jit::Executable::bindGgufParams(llvm::StringRef path) {
  auto opened = gguf::GgufFile::open(path);
  if (!opened)
    return opened.takeError();
  std::shared_ptr<const gguf::GgufFile> file(std::move(*opened));
  const Function &f = impl->exe->function();
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
    return e;
  for (auto [k, p] : got)
    impl->bound[k] = p;
    impl->paramsVersion = moe::Executable::newParamsVersion();
  impl->files.push_back(std::move(file));
  impl->binders.push_back(std::move(binder));
  return llvm::Error::success();
}

llvm::Error jit::Executable::bindRandomParams(uint64_t seed) {
  return forEachUnboundParam(*this, [&](const Value &a, llvm::ArrayRef<int64_t> shape) -> llvm::Error {
    auto t = randomTensor(seed, a.getName(), a.getType().elem, shape, true);
    if (!t)
      return t.takeError();
    impl->paramsVersion = moe::Executable::newParamsVersion();
    impl->bound[a.getArgIndex()] = storedData(impl->owned.emplace_back(std::move(*t)),
                                               impl->storage);
    return llvm::Error::success();
  });
}

llvm::Error jit::Executable::run(const std::vector<std::pair<std::string, TensorView>> &inputs,
                                 std::vector<HostTensor> &outputs,
                                 const std::vector<std::pair<std::string, int64_t>> &symbols) {
  const Function &f = impl->exe->function();
  SymbolBindings syms;
  for (auto &[n, v] : symbols)
    syms[n] = v;
  if (auto e = checkSymbols(f, syms))
    return e;
  std::vector<const void *> args = impl->bound;
  std::vector<bool> given(f.getNumArguments(), false);
  for (auto &[name, v] : inputs) {
    const Value *a = f.lookupArgument(name);
    if (!a || a->isParam())
      return err("@{} has no input '{}'", f.getName(), name);
    if (given[a->getArgIndex()])
      return err("input '{}' given twice", name);
    if (auto e = checkView(*a, v, &syms))
      return e;
    args[a->getArgIndex()] = v.data;
    given[a->getArgIndex()] = true;
  }
  for (const Value *a : f.getArguments())
    if (!a->isParam() && !given[a->getArgIndex()])
      return err("input '{}' of @{} is not given", a->getName(), f.getName());
    else if (a->isParam() && !args[a->getArgIndex()])
      return err("param '{}' of @{} is not bound (bindParam or bindRandomParams)",
                 a->getName(), f.getName());
  // Params' symbolic dims are checked now that the symbols are known.
  for (const Value *a : f.getArguments())
    if (a->isParam() && !a->getType().isStatic())
      return err("param '{}' has symbolic dims; not supported by the library API yet",
                 a->getName());
  RunOptions ro;
  ro.paramsVersion = impl->paramsVersion;
  auto out = impl->exe->runRaw(args, syms, ro);
  if (!out)
    return out.takeError();
  outputs.clear();
  for (Tensor &t : *out) {
    HostTensor h;
    h.dtype = toDType(t.elem);
    h.shape = t.shape;
    h.bytes = t.storedBytes();
    outputs.push_back(std::move(h));
  }
  return llvm::Error::success();
}

double jit::Executable::compileMs() const { return impl->exe->jitStats().compileMs; }
bool jit::Executable::fromCache() const { return impl->exe->jitStats().modulesFromCache > 0; }
