//===- Bind.cpp - The library API: params, derived params, shards ----------===//
//
// What the caller binds (caller memory, a mapped GGUF model, moe-run's
// seeded generator) is recorded per param; each binding rebuilds, once,
// what every rank this process runs is given for that param and for every
// param derived from it (merged gate_up, tp-split shards), through the
// Binder that moe-run uses. Nothing is rebuilt per run.
//
//===----------------------------------------------------------------------===//
#include "api/ApiInternal.h"

using namespace moe;
using namespace moe::api;

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

