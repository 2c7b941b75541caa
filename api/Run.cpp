//===- Run.cpp - The library API: queries, symbols and runs ---------------===//
//
// Argument and result descriptions for given symbol values, symbols
// inferred from the inputs' shapes, and runs: every rank of a split
// function in-process, or this process's rank with a communicator; results
// owned or written into caller memory.
//
//===----------------------------------------------------------------------===//
#include "api/ApiInternal.h"

using namespace moe;
using namespace moe::api;

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


